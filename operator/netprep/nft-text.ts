/** nftables text shared by the ruleset's parts (nft-guest.ts, nft-masquerade.ts, nft-record.ts, nftables.ts). */

/** An interface name as an nftables string (the names are checked shapes: values.ts `isLinkName`). */
export const q = (name: string) => `"${name}"`;

/** One chain of a table's body: a base chain with its `hook` line, or a regular chain without. */
export const chain = (name: string, hook: string | undefined, rules: readonly string[]) =>
  [`  chain ${name} {`, ...(hook ? [`    ${hook}`] : []), ...rules.map((r) => `    ${r}`), '  }'].join('\n');

/** A table of chains, blank lines between them. */
export const table = (family: string, name: string, body: readonly string[]) =>
  [`table ${family} ${name} {`, body.join('\n\n'), '}'].join('\n');

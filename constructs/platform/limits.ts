/** Bounds of node setup's inputs, shared by the NodeSetup props check and the command's flags. */
export const NODE_SETUP_LIMITS = {
  // 2 MiB × 1,048,576 = 2 TiB, 1 GiB × 4096 = 4 TiB: more than a node has, less than a typo's overflow. The real
  // bound is the node's memory, checked on the node (HUGEPAGES_MAX_SHARE).
  hugepages2Mi: { min: 0, max: 1_048_576 },
  hugepages1Gi: { min: 0, max: 4096 },
  recheckSeconds: { min: 10, max: 86_400 },
} as const;

/** At most this share of a node's memory goes to hugepages: the rest must still run the node and its pods. */
export const HUGEPAGES_MAX_SHARE = 0.5;

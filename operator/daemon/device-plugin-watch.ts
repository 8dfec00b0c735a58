// Watching a directory's entries with inotify (fs.watch), robust to the directory itself coming and going: the
// kubelet's plugin directory can be recreated, /dev/net exists only once the tun module is loaded. When the
// directory is missing, its nearest existing ancestor is watched instead, and the watch moves down (or back up) as
// the path appears or disappears. Events only say "look again": the callback re-reads the state it cares about,
// so a coalesced or missed event name costs nothing. No polling: the only timer is the retry when inotify itself
// refuses a watch (e.g. fs.inotify.max_user_watches reached).
import fs from 'node:fs';
import path from 'node:path';
import { backoffDelay } from '../kube/backoff';
import type { Logger } from '../kube/log';

/** A directory watch; close() releases the inotify watch and any pending retry. */
export interface DirectoryWatch {
  /** The directory inotify currently watches: the target, or its nearest existing ancestor; undefined after close. */
  readonly watching: string | undefined;
  close(): void;
}

const ARM_RETRY = { initialMs: 1000, maxMs: 60_000 };

/**
 * Calls `onChange` whenever an entry of `dir` may have been created, removed or renamed, and once more whenever the
 * watch had to move (the directory appeared, vanished or was replaced). Attribute and content changes are ignored
 * ("change" events): writes to device nodes produce them in bulk and they never change what is in the directory.
 */
export function watchDirectory(dir: string, onChange: () => void, logger: Logger): DirectoryWatch {
  return new NearestDirectoryWatch(path.resolve(dir), onChange, logger);
}

class NearestDirectoryWatch implements DirectoryWatch {
  private watcher: fs.FSWatcher | undefined;
  private watched: { path: string; identity: string } | undefined;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly target: string,
    private readonly onChange: () => void,
    private readonly logger: Logger,
  ) {
    this.arm();
  }

  get watching(): string | undefined {
    return this.closed ? undefined : this.watched?.path;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.retry = undefined;
    this.unwatch();
  }

  /** Puts the watch on the nearest existing directory. */
  private arm(): void {
    // A directory can vanish between finding it and watching it: look again at once, a few times, before backing off.
    for (let attempt = 1; !this.closed; attempt += 1) {
      const nearest = nearestDirectory(this.target);
      if (this.watcher && this.watched?.path === nearest.path && this.watched.identity === nearest.identity) return;
      this.unwatch();
      try {
        this.watch(nearest);
        this.failures = 0;
        return;
      } catch (error) {
        if (isGone(error) && attempt < 3) continue;
        this.failures += 1;
        const delayMs = backoffDelay(this.failures, ARM_RETRY);
        this.logger.error('cannot watch directory; retrying', { dir: nearest.path, error, delayMs });
        clearTimeout(this.retry);
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.event('rename');
        }, delayMs);
        return;
      }
    }
  }

  private watch(nearest: { path: string; identity: string }): void {
    const watcher = fs.watch(nearest.path, { encoding: 'utf8' }, (eventType) => this.event(eventType));
    // An error (the watched inode went away under us, inotify overflow) means the watch is dead: move it.
    watcher.on('error', (error) => {
      if (watcher !== this.watcher) return;
      this.logger.debug('directory watch failed; re-arming', { dir: nearest.path, error });
      this.unwatch();
      this.event('rename');
    });
    this.watcher = watcher;
    this.watched = nearest;
    if (nearest.path !== this.target)
      this.logger.debug('watching ancestor', { dir: this.target, ancestor: nearest.path });
  }

  private event(eventType: string): void {
    if (this.closed || eventType !== 'rename') return;
    this.arm();
    // Always look again, also after a move: the entry may have appeared between the mkdir and the new watch.
    this.onChange();
  }

  private unwatch(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.watched = undefined;
  }
}

function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** `dir` if it is a directory, else its nearest ancestor that is ("/" always is). */
function nearestDirectory(dir: string): { path: string; identity: string } {
  for (let current = dir; ; current = path.dirname(current)) {
    try {
      const stats = fs.statSync(current, { bigint: true });
      if (stats.isDirectory()) return { path: current, identity: `${stats.dev}:${stats.ino}:${stats.birthtimeNs}` };
    } catch {
      // Missing or unreadable: try the parent.
    }
    if (current === path.dirname(current)) return { path: current, identity: 'root' };
  }
}

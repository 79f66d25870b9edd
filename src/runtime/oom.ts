// Whether the kernel's OOM killer killed a process of a container during one run (inspect's
// State.OOMKilled, as docker sets it for any OOM kill in the container's cgroup). The cgroup's own
// counter (`oom_kill` in memory.oom_control on v1, memory.events on v2) cannot tell: runc removes
// the cgroup the moment the process ends, before the monitor hears of the exit. The kernel log
// keeps the fact: every OOM kill writes one record naming the victim's memory cgroup
// ("oom-kill:…,task_memcg=/strata/<id>,…"). A watch opens /dev/kmsg before the process starts
// and reads past what is already there, so only records of this run count, however quickly the
// process outgrows its limit. Where /dev/kmsg cannot be read (no root, dmesg_restrict), there is
// no watch and the container reads as not OOM-killed.
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { seekEnd } from '../sys/fileio.js';

/** A kmsg record is at most a few KiB; a read into a smaller buffer fails (EINVAL). */
const RECORD_MAX = 16 * 1024;

export class OomWatch {
  private readonly buf = Buffer.alloc(RECORD_MAX);
  private killed = false;

  private constructor(
    private readonly fd: number,
    private readonly marker: string,
  ) {
    // What the log holds already is of earlier runs: skipped, not read (thousands of records
    // on a host that has been up a while), unless the seek fails.
    try {
      seekEnd(fd);
    } catch {
      this.drain();
      this.killed = false;
    }
  }

  /** Watch the memory cgroup at `cgroupsPath` (as the OCI spec gives it); null without /dev/kmsg. */
  static open(cgroupsPath: string): OomWatch | null {
    let fd: number;
    try {
      fd = openSync('/dev/kmsg', constants.O_RDONLY | constants.O_NONBLOCK);
    } catch {
      return null;
    }
    return new OomWatch(fd, `task_memcg=${cgroupsPath}`);
  }

  /** Read the records written since the last look; true once one killed a process of the cgroup. */
  private drain(): void {
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (err) {
        // EPIPE: records were overwritten before we read them; reading goes on after them.
        if ((err as NodeJS.ErrnoException).code === 'EPIPE') continue;
        // EAGAIN: nothing more for now.
        return;
      }
      if (n === 0) return;
      const text = this.buf.toString('utf8', 0, n);
      const at = text.indexOf(this.marker);
      if (at >= 0 && /^[,/\n]/.test(text.slice(at + this.marker.length))) this.killed = true;
    }
  }

  /** After the process ended: whether the OOM killer killed one of its processes; closes the watch. */
  finish(): boolean {
    this.drain();
    closeSync(this.fd);
    return this.killed;
  }
}

// Whether the stack keeps Node's event loop alive. A kernel socket is a libuv handle: a
// ref'd one keeps the process running, an unref'd one does not (net.Socket.ref/unref). The
// stack's sockets are not handles, so the stack counts the ref'd ones (sockets, servers,
// stack.ref()) and, while that count is above zero, holds the process's one Node handle.

/** A ref'd timer that never fires in practice: the cheapest handle that holds the loop. */
const HOLD_INTERVAL_MS = 2 ** 30;
function noop(): void {}

/**
 * One handle for the whole process, held while any stack holds: a fleet's 10,000 stacks each
 * serving a port hold one Node timer, not 10,000.
 */
let holdingStacks = 0;
let processHandle: NodeJS.Timeout | null = null;

function holdProcess(): void {
  if (holdingStacks++ === 0) processHandle = setInterval(noop, HOLD_INTERVAL_MS);
}

function releaseProcess(): void {
  if (--holdingStacks === 0 && processHandle !== null) {
    clearInterval(processHandle);
    processHandle = null;
  }
}

export class LoopHold {
  private count = 0;
  /** This stack counts in the process's hold (holdProcess). */
  private holding = false;

  /**
   * enabled false: never holds (a stack in virtual time: nothing in it happens unless its
   * driver advances the clock, so waiting for it would only hang the process).
   */
  constructor(private readonly enabled = true) {}

  /** Ref'd users now. */
  get refs(): number {
    return this.count;
  }

  ref(): void {
    if (this.count++ === 0 && !this.holding && this.enabled) {
      this.holding = true;
      holdProcess();
    }
  }

  unref(): void {
    if (this.count === 0) return;
    if (--this.count === 0) this.release();
  }

  /** The stack closed: nothing holds the loop any more. */
  close(): void {
    this.count = 0;
    this.release();
  }

  private release(): void {
    if (!this.holding) return;
    this.holding = false;
    releaseProcess();
  }
}

/** One user's ref (a socket, a server): ref'd or not, and counted only while active. */
export class LoopRef {
  private wanted = true;
  private active = false;
  private held = false;

  constructor(private readonly hold: LoopHold) {}

  /** ref()/unref() of the user (Node's default: ref'd). */
  set(wanted: boolean): void {
    this.wanted = wanted;
    this.update();
  }

  /** The user has (or no longer has) something that would be a handle in Node: open, listening. */
  setActive(active: boolean): void {
    this.active = active;
    this.update();
  }

  private update(): void {
    const h = this.wanted && this.active;
    if (h === this.held) return;
    this.held = h;
    if (h) this.hold.ref();
    else this.hold.unref();
  }
}

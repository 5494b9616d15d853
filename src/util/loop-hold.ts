// Whether the stack keeps Node's event loop alive. A kernel socket is a libuv handle: a
// ref'd one keeps the process running, an unref'd one does not (net.Socket.ref/unref). The
// stack's sockets are not handles, so the stack counts the ref'd ones (sockets, servers,
// stack.ref()) and holds one Node handle of its own only while that count is above zero.

/** A ref'd timer that never fires in practice: the cheapest handle that holds the loop. */
const HOLD_INTERVAL_MS = 2 ** 30;
function noop(): void {}

export class LoopHold {
  private count = 0;
  private handle: NodeJS.Timeout | null = null;

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
    if (this.count++ === 0 && this.handle === null && this.enabled) this.handle = setInterval(noop, HOLD_INTERVAL_MS);
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
    if (this.handle !== null) clearInterval(this.handle);
    this.handle = null;
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

// Exceptions from the application's listeners and callbacks, raised outside the stack.
//
// What Node 20 does (observed with real node:net and node:dgram sockets on 127.0.0.1): when a
// listener of a net.Socket's 'connect', 'data', 'drain' or 'timeout', a net.Server's
// 'connection' or a dgram socket's 'message' throws, the error goes to
// process.on('uncaughtException') (the very object thrown; with no such listener the process
// dies) in the same turn, and the socket is neither destroyed nor sent an 'error': the
// listeners after the thrower miss that one event, later events come as usual (later data,
// datagrams, drains, timeouts after new activity). 'end' and 'close' are emitted on a tick of
// their own, so their exceptions are uncaught there too; a throwing 'end' listener cuts the
// stream's own end handling short (no automatic end of our side, no 'close' until the
// application ends it), and a throwing 'drain' listener leaves the Writable one finished
// write short (no 'finish', so no automatic destroy after end()): the same stream code does
// both here as well. A throwing 'connect' listener also skips 'ready' (emitted in one go).
//
// Here these events come from inside the stack's receive path (a segment being processed),
// which must never see the exception: the segment's processing has to complete (its ACK,
// the TCB's state). So every call that can reach the application from there catches, and
// reportToApplication rethrows on process.nextTick: an uncaught exception with the original
// error, in the same turn of the event loop, once the stack is done with the frame (one
// nextTick later than Node, after any the listener queued itself). Unlike Node, whose
// queued writes wait on a 'connect' listener of their own, a write made while connecting
// still goes out when a 'connect' listener throws.

function rethrow(err: unknown): never {
  throw err;
}

/** Raises err as an uncaught exception of the application's, outside the stack. */
export function reportToApplication(err: unknown): void {
  process.nextTick(rethrow, err);
}

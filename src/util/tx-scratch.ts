// Transmit scratch shared by every stack of the process, one buffer per layer (TCP, UDP,
// ICMP): a layer builds a frame in it and hands it to IPv4 and the link, which never keep it
// (Link.send's contract) and never deliver it to a receiver during the call (every link
// copies or writes it out: memory links and segments copy and deliver on a later turn, a
// TAP writes it). So one stack is done with the buffer before any other can write into it,
// as JavaScript runs one frame at a time; a fleet of 10,000 stacks then needs one 64 KiB
// buffer per layer, not 10,000 (Linux, too, builds each skb in per-CPU memory, not per socket).

const scratch = new Map<string, Buffer>();

/** The process's transmit scratch of `layer`, at least `size` bytes (grown, never shrunk). */
export function sharedTxScratch(layer: string, size: number): Buffer {
  let buf = scratch.get(layer);
  if (buf === undefined || buf.length < size) {
    buf = Buffer.alloc(size);
    scratch.set(layer, buf);
  }
  return buf;
}

// Linux's struct tcp_info (include/uapi/linux/tcp.h, 248 bytes since 6.7) as getsockopt
// TCP_INFO returns it, read into the tcpi_* names the script's asserts use, the same names
// socket.info() gives for the stack (src/tcp/info.ts). A shorter struct from an older kernel
// leaves the later fields out.

/** The size asked for: the whole struct of current kernels (the kernel copies what it has). */
export const TCP_INFO_SIZE = 248;

type Field = readonly [name: string, offset: number, size: 1 | 2 | 4 | 8];

const FIELDS: readonly Field[] = [
  ['tcpi_state', 0, 1],
  ['tcpi_ca_state', 1, 1],
  ['tcpi_retransmits', 2, 1],
  ['tcpi_probes', 3, 1],
  ['tcpi_backoff', 4, 1],
  ['tcpi_options', 5, 1],
  // byte 6: tcpi_snd_wscale:4, tcpi_rcv_wscale:4 (below)
  ['tcpi_rto', 8, 4],
  ['tcpi_ato', 12, 4],
  ['tcpi_snd_mss', 16, 4],
  ['tcpi_rcv_mss', 20, 4],
  ['tcpi_unacked', 24, 4],
  ['tcpi_sacked', 28, 4],
  ['tcpi_lost', 32, 4],
  ['tcpi_retrans', 36, 4],
  ['tcpi_fackets', 40, 4],
  ['tcpi_last_data_sent', 44, 4],
  ['tcpi_last_ack_sent', 48, 4],
  ['tcpi_last_data_recv', 52, 4],
  ['tcpi_last_ack_recv', 56, 4],
  ['tcpi_pmtu', 60, 4],
  ['tcpi_rcv_ssthresh', 64, 4],
  ['tcpi_rtt', 68, 4],
  ['tcpi_rttvar', 72, 4],
  ['tcpi_snd_ssthresh', 76, 4],
  ['tcpi_snd_cwnd', 80, 4],
  ['tcpi_advmss', 84, 4],
  ['tcpi_reordering', 88, 4],
  ['tcpi_rcv_rtt', 92, 4],
  ['tcpi_rcv_space', 96, 4],
  ['tcpi_total_retrans', 100, 4],
  ['tcpi_pacing_rate', 104, 8],
  ['tcpi_max_pacing_rate', 112, 8],
  ['tcpi_bytes_acked', 120, 8],
  ['tcpi_bytes_received', 128, 8],
  ['tcpi_segs_out', 136, 4],
  ['tcpi_segs_in', 140, 4],
  ['tcpi_notsent_bytes', 144, 4],
  ['tcpi_min_rtt', 148, 4],
  ['tcpi_data_segs_in', 152, 4],
  ['tcpi_data_segs_out', 156, 4],
  ['tcpi_delivery_rate', 160, 8],
  ['tcpi_busy_time', 168, 8],
  ['tcpi_rwnd_limited', 176, 8],
  ['tcpi_sndbuf_limited', 184, 8],
  ['tcpi_delivered', 192, 4],
  ['tcpi_delivered_ce', 196, 4],
  ['tcpi_bytes_sent', 200, 8],
  ['tcpi_bytes_retrans', 208, 8],
  ['tcpi_dsack_dups', 216, 4],
  ['tcpi_reord_seen', 220, 4],
  ['tcpi_rcv_ooopack', 224, 4],
  ['tcpi_snd_wnd', 228, 4],
  ['tcpi_rcv_wnd', 232, 4],
  ['tcpi_rehash', 236, 4],
  ['tcpi_total_rto', 240, 2],
  ['tcpi_total_rto_recoveries', 242, 2],
  ['tcpi_total_rto_time', 244, 4],
];

/** Reads the first `length` bytes the kernel filled in (host byte order: little-endian here). */
export function decodeTcpInfo(buf: Buffer, length: number): Record<string, number> {
  const info: Record<string, number> = {};
  for (const [name, offset, size] of FIELDS) {
    if (offset + size > length) continue;
    info[name] = size === 1 ? buf[offset]! : size === 2 ? buf.readUInt16LE(offset) : size === 4 ? buf.readUInt32LE(offset) : Number(buf.readBigUInt64LE(offset));
  }
  if (length > 6) {
    info.tcpi_snd_wscale = buf[6]! & 0x0f;
    info.tcpi_rcv_wscale = buf[6]! >> 4;
  }
  if (length > 7) {
    info.tcpi_delivery_rate_app_limited = buf[7]! & 1;
    info.tcpi_fastopen_client_fail = (buf[7]! >> 1) & 3;
  }
  return info;
}

// SipHash-2-4 lives in src/util now (IPv4's IDs use it too); this path is kept for importers.
export { siphash24 } from '../util/siphash.ts';

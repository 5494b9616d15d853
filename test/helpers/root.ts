// Integration tests need root and /dev/net/tun; without them they are registered as skipped
// (uvu counts them), never silently passed.

import { existsSync } from 'node:fs';

export const canUseTap = process.getuid?.() === 0 && existsSync('/dev/net/tun');

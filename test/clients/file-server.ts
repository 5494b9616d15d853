// A kernel-side HTTP file server for the tests (Node's http on the kernel's sockets): serves
// FILE for GET on any path, on PORT of every address of the namespace it runs in, and prints
// `listening PORT` once it accepts connections.
//
//   file-server.ts PORT FILE

import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';

const [portText, file] = process.argv.slice(2);
if (!portText || !file) {
  process.stderr.write('usage: file-server.ts PORT FILE\n');
  process.exit(2);
}
const size = statSync(file).size;
const server = http.createServer((req, res) => {
  if (req.method !== 'GET') {
    res.writeHead(405).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  createReadStream(file).pipe(res);
});
server.listen(Number(portText), '0.0.0.0', () => process.stdout.write(`listening ${portText}\n`));
process.on('SIGTERM', () => process.exit(0));

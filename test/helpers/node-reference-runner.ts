// Child process of node-reference.ts onNode: runs one scenario on Node's own net and dgram
// (inside the namespace the parent made) and prints its record as the last line, in JSON.
import dgram from 'node:dgram';
import net from 'node:net';
import { load } from './node-reference.ts';

const [file, name] = process.argv.slice(2);
const scenario = await load(file!, name!);
const result = await scenario({
  kind: 'node',
  serverNet: net,
  clientNet: net,
  serverDgram: dgram,
  clientDgram: dgram,
  serverAddress: '127.0.0.1',
  clientAddress: '127.0.0.1',
});
console.log(JSON.stringify(result));
process.exit(0);

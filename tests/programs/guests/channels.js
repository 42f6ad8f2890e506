// A grpc-js program whose every observable the channel ledger's script could
// change is printed, so that the guest suite can run it with the agents and
// without and compare: the classes' identities, an error from the constructor,
// the program's own Error.prepareStackTrace (never called by the ledger), the
// Clients it closes, the ones it drops to the collector, and its descriptors.
//
//   node --expose-gc channels.js TARGET N
//
// Prints one line of `key value` pairs and exits 0.
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require(path.join(__dirname, '..', 'grpcjs', 'node_modules', '@grpc', 'grpc-js'));

const [target, countArg] = process.argv.slice(2);
const count = Number(countArg || 20);
const fds = () => fs.readdirSync('/proc/self/fd').length;
let prepared = 0;
Error.prepareStackTrace = (error, calls) => {
  prepared += 1;
  return `${error}\n${calls.length} frames`;
};
Error.stackTraceLimit = 7;

const out = {};
const local = { 'grpc.use_local_subchannel_pool': 1 };
const insecure = grpc.credentials.createInsecure();
const probe = new grpc.Channel(target, insecure, {});
out.identity = [
  probe instanceof grpc.Channel,
  probe.constructor === grpc.Channel,
  Object.getPrototypeOf(probe) === grpc.Channel.prototype,
  grpc.Channel.name === 'ChannelImplementation',
  grpc.Channel.length,
  typeof grpc.Channel.prototype.close,
  grpc.Channel.prototype.close.name,
  Object.keys(grpc.Channel.prototype).length,
].join(',');
probe.close();
try {
  new grpc.Channel(target, null, {});
  out.thrown = 'none';
} catch (e) {
  out.thrown = `${e.constructor.name}:${e.message.replace(/\s+/g, '_')}`;
}
out.limit = Error.stackTraceLimit;
out.before = fds();

const finalized = new FinalizationRegistry(() => {
  out.collected = (out.collected || 0) + 1;
});

function waitReady(client) {
  return new Promise((resolve) => client.waitForReady(Date.now() + 5000, (err) => resolve(!err)));
}

async function main() {
  const closed = [];
  for (let i = 0; i < count; i++) {
    const client = new grpc.Client(target, insecure, local);
    await waitReady(client);
    closed.push(client);
  }
  await new Promise((r) => setImmediate(r));
  for (const client of closed) client.close();
  // Clients made and never connected nor closed, then dropped: the collector's.
  (() => {
    for (let i = 0; i < count; i++) finalized.register(new grpc.Client(target, insecure, local), i);
  })();
  for (let i = 0; i < 20 && fds() > out.before; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  for (let i = 0; i < 5; i++) {
    global.gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  out.after = fds();
  out.collected = out.collected || 0;
  out.prepared = prepared;
  console.log(Object.entries(out).map(([k, v]) => `${k} ${v}`).join(' '));
}

main().then(() => process.exit(0));

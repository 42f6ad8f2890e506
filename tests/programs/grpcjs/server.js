// A grpc-js health server, clean or with a leak a team might ship, for the
// origin tests: Node's JavaScript frames are named from its perf map, and its
// Clients by the channel ledger.
//
//   node server.js PORT clean
//   node server.js PORT leak-file N     every Nth Check opens a file and keeps it (keepAuditLog)
//   node server.js PORT leak-client N   every Nth Check makes a Client to itself on its own
//                                       subchannel pool, connects it and never closes it (askSelf)
//   node server.js PORT shared-client N the same on the default global pool: one connection
//                                       shared by every Client, not a leak
//   node server.js PORT client-closed N the same on its own pool, closed once it has connected
//
// Prints "listening on ADDR", then serves until killed.
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const [port, mode, everyArg] = process.argv.slice(2);
const every = Number(everyArg || 10);
const proto = path.join(__dirname, '..', '..', '..', 'proto', 'grpc', 'health', 'v1', 'health.proto');
const health = grpc.loadPackageDefinition(loader.loadSync(proto)).grpc.health.v1;
const kept = [];
let checks = 0;
let bound = 0;

function askSelf(options) {
  const client = new grpc.Client(`127.0.0.1:${bound}`, grpc.credentials.createInsecure(), options);
  client.waitForReady(Date.now() + 5000, () => {});
  return client;
}

function askSelfAndClose() {
  const client = askSelf({ 'grpc.use_local_subchannel_pool': 1 });
  // Closed on the next turn: grpc-js 1.14 keeps the connection of a channel closed
  // inside its own waitForReady callback.
  client.waitForReady(Date.now() + 5000, () => setImmediate(() => client.close()));
}

function keepAuditLog() {
  kept.push(fs.openSync('/etc/hostname', 'r'));
}

function check(call, callback) {
  checks += 1;
  if (checks % every === 0) {
    if (mode === 'leak-file') {
      keepAuditLog();
    } else if (mode === 'leak-client') {
      kept.push(askSelf({ 'grpc.use_local_subchannel_pool': 1 }));
    } else if (mode === 'shared-client') {
      kept.push(askSelf({}));
    } else if (mode === 'client-closed') {
      askSelfAndClose();
    }
  }
  callback(null, { status: 'SERVING' });
}

const server = new grpc.Server();
server.addService(health.Health.service, { check });
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, actual) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  bound = actual;
  console.log(`listening on 127.0.0.1:${bound}`);
});

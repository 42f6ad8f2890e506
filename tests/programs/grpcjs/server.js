// A grpc-js health server, clean or with a leak a team might ship, for the
// origin tests: Node's JavaScript frames are named from its perf map.
//
//   node server.js PORT clean
//   node server.js PORT leak-file N   every Nth Check opens a file and keeps it (keepAuditLog)
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

function keepAuditLog() {
  kept.push(fs.openSync('/etc/hostname', 'r'));
}

function check(call, callback) {
  checks += 1;
  if (mode === 'leak-file' && checks % every === 0) {
    keepAuditLog();
  }
  callback(null, { status: 'SERVING' });
}

const server = new grpc.Server();
server.addService(health.Health.service, { check });
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(`listening on 127.0.0.1:${bound}`);
});

// A plain @grpc/grpc-js server with the standard health service (the
// grpc-health-check package), for scripts/false-alarms.sh: prints its port.
const grpc = require("@grpc/grpc-js");
const { HealthImplementation } = require("grpc-health-check");

const server = new grpc.Server();
const health = new HealthImplementation({ "": "SERVING" });
health.addToServer(server);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(port);
});

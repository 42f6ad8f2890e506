// A grpc-java server on Netty that serves no service, for the tests of what a
// server says at the HTTP/2 level. Started without perfmark on its classpath
// (as a deployment missing a jar would be), it fails every stream in Netty's
// handler and closes the connection with a GOAWAY (INTERNAL_ERROR) whose debug
// data names the missing class. Built with javac against Debian's jars.
//
//     java -cp ... BareServer PORT
//
// Prints "listening on ADDR", then serves until killed.

import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;

public class BareServer {
    public static void main(String[] args) throws Exception {
        InetSocketAddress at = new InetSocketAddress("127.0.0.1", Integer.parseInt(args[0]));
        Server server = NettyServerBuilder.forAddress(at).build().start();
        System.out.println("listening on 127.0.0.1:" + server.getPort());
        server.awaitTermination();
    }
}

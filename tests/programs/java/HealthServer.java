// A grpc-java health server on Netty, clean or with a leak a team might ship,
// for the origin tests. The health service is written out here (a method
// descriptor and a bytes marshaller), so it needs no generated stubs: a
// SERVING reply is the two bytes of field 1 = 1.
//
//     java -cp ... HealthServer PORT clean
//     java -cp ... HealthServer PORT leak-file N      every Nth Check keeps a FileInputStream (keepAuditLog)
//     java -cp ... HealthServer PORT leak-channel N   every Nth Check builds a ManagedChannel to
//                                                     itself, connects it, and never shuts it down
//     java -cp ... HealthServer PORT channel-closed N the same, shut down once it has connected
//
// Prints "listening on ADDR", then serves until killed.

import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCalls;
import java.io.ByteArrayInputStream;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;

public class HealthServer {
    static final MethodDescriptor.Marshaller<byte[]> BYTES = new MethodDescriptor.Marshaller<byte[]>() {
        public InputStream stream(byte[] value) {
            return new ByteArrayInputStream(value);
        }

        public byte[] parse(InputStream in) {
            try {
                return in.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    };
    static final MethodDescriptor<byte[], byte[]> CHECK = MethodDescriptor.<byte[], byte[]>newBuilder()
            .setType(MethodDescriptor.MethodType.UNARY)
            .setFullMethodName("grpc.health.v1.Health/Check")
            .setRequestMarshaller(BYTES)
            .setResponseMarshaller(BYTES)
            .build();
    static final byte[] SERVING = {8, 1};

    static final List<Object> kept = new ArrayList<>();
    static String mode;
    static int every;
    static int port;
    static long checks;

    static void keepAuditLog() throws IOException {
        kept.add(new FileInputStream("/etc/hostname"));
    }

    static void askSelf() {
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
        channel.getState(true);
        kept.add(channel);
    }

    static void askSelfAndClose() throws InterruptedException {
        ManagedChannel channel = NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
        channel.getState(true);
        for (int i = 0; i < 200 && channel.getState(false) != io.grpc.ConnectivityState.READY; i++) {
            Thread.sleep(5);
        }
        channel.shutdownNow().awaitTermination(5, java.util.concurrent.TimeUnit.SECONDS);
    }

    static synchronized void check() throws IOException, InterruptedException {
        checks += 1;
        if (checks % every != 0) {
            return;
        }
        if (mode.equals("leak-file")) {
            keepAuditLog();
        } else if (mode.equals("leak-channel")) {
            askSelf();
        } else if (mode.equals("channel-closed")) {
            askSelfAndClose();
        }
    }

    public static void main(String[] args) throws Exception {
        mode = args.length > 1 ? args[1] : "clean";
        every = args.length > 2 ? Integer.parseInt(args[2]) : 10;
        ServerServiceDefinition health = ServerServiceDefinition.builder("grpc.health.v1.Health")
                .addMethod(CHECK, ServerCalls.asyncUnaryCall((request, reply) -> {
                    try {
                        check();
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    reply.onNext(SERVING);
                    reply.onCompleted();
                }))
                .build();
        InetSocketAddress at = new InetSocketAddress("127.0.0.1", Integer.parseInt(args[0]));
        Server server = NettyServerBuilder.forAddress(at).addService(health).build().start();
        port = server.getPort();
        System.out.println("listening on 127.0.0.1:" + port);
        server.awaitTermination();
    }
}

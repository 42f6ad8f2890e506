// A grpc-java program whose every observable the JVM part of the native agent
// could change is printed, so that the guest suite can run it with the agent
// (JAVA_TOOL_OPTIONS, LD_PRELOAD) and without and compare: channels built and
// shut down, channels dropped to the collector (tagged by the ledger: a tag
// must not keep one alive), files closed and dropped, an exception's class
// and message, child processes, its threads and its descriptors.
//
//     java -cp ... Channels HOST PORT N
//
// Prints one line of `key value` pairs and exits 0. `before` (the descriptors
// at the start) varies from run to run with the JVM's own start.
import io.grpc.ConnectivityState;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.List;
import java.util.StringJoiner;
import java.util.concurrent.TimeUnit;

public class Channels {
    static int fds() {
        String[] names = new File("/proc/self/fd").list();
        return names == null ? -1 : names.length;
    }

    static ManagedChannel ready(String host, int port) throws InterruptedException {
        ManagedChannel channel = NettyChannelBuilder.forAddress(host, port).usePlaintext().build();
        channel.getState(true);
        for (int i = 0; i < 500 && channel.getState(false) != ConnectivityState.READY; i++) {
            Thread.sleep(10);
        }
        return channel;
    }

    public static void main(String[] args) throws Exception {
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        int n = Integer.parseInt(args[2]);
        StringJoiner out = new StringJoiner(" ");
        out.add("threads " + Thread.activeCount());
        try {
            new FileInputStream("/nonexistent/fdsoak");
            out.add("thrown none");
        } catch (IOException e) {
            out.add("thrown " + e.getClass().getSimpleName() + ":" + e.getMessage().replaceAll("\\s+", "_"));
        }
        int before = fds();
        out.add("before " + before);

        int ready = 0;
        for (int i = 0; i < n; i++) {
            ManagedChannel channel = ready(host, port);
            ready += channel.getState(false) == ConnectivityState.READY ? 1 : 0;
            boolean done = channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            ready += done ? 0 : 1000;
        }
        out.add("ready " + ready);

        // Built and dropped, never connected nor shut down: the collector's alone.
        List<WeakReference<Object>> dropped = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            dropped.add(new WeakReference<>(NettyChannelBuilder.forAddress(host, port).usePlaintext().build()));
        }
        for (int i = 0; i < n; i++) {
            try (FileInputStream in = new FileInputStream("/etc/hostname")) {
                in.read();
            }
        }
        int exits = 0;
        for (int i = 0; i < 10; i++) {
            exits += new ProcessBuilder("true").start().waitFor();
        }
        out.add("exits " + exits);

        long collected = 0;
        for (int i = 0; i < 50 && collected < n; i++) {
            System.gc();
            Thread.sleep(20);
            collected = dropped.stream().filter(r -> r.get() == null).count();
        }
        out.add("collected " + collected);
        out.add("after " + fds());
        System.out.println(out);
        System.exit(0);
    }
}

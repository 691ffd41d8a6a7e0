package bench.nexmark;

import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KafkaStreams.CloseOptions;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;

/**
 * Nexmark on Kafka Streams, a peer of {@code python -m bench nexmark compare}.
 *
 * <pre>
 * java -Xmx512m -jar target/nexmark-kafka-streams.jar --query q7 --bootstrap HOST:PORT \
 *     --input-topic T --output-topic O --group G --expected N --events E --state-dir D
 * </pre>
 *
 * <p>Consumes the input topic from the earliest offset (application id = {@code --group}; its
 * internal topics are named after it), writes rows as JSON to the output topic and prints one
 * JSON stats line on stdout once {@code expected} records were consumed and nothing moved for 5
 * s (Progress); then closes and exits. Logs go to stderr.
 */
public final class KafkaStreamsApp {
  private KafkaStreamsApp() {}

  public static void main(String[] argv) throws InterruptedException {
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    Map<String, String> a = parse(argv);
    String query = a.get("--query");
    if (!Queries.ALL.contains(query)) {
      System.err.println("kafka-streams: query " + query + " not implemented; have " + Queries.ALL);
      System.exit(2);
    }
    Progress progress =
        new Progress(query, Long.parseLong(a.get("--expected")), Long.parseLong(a.get("--events")));
    Topology topology = Queries.build(query, a.get("--input-topic"), a.get("--output-topic"), progress);

    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, a.get("--group"));
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("--bootstrap"));
    p.put(StreamsConfig.STATE_DIR_CONFIG, a.get("--state-dir"));
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    // The record cache forwards aggregate updates downstream (to suppress) on commit, so commit
    // every second (default 30 s) for closed windows to flow on; every 100 ms costs more (each
    // commit flushes the RocksDB memtables).
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Integer.parseInt(a.getOrDefault("--commit-ms", "1000")));
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    // "rocksDB" (Kafka Streams' default) or "in_memory" for the window stores
    p.put(StreamsConfig.DEFAULT_DSL_STORE_CONFIG, a.getOrDefault("--store", "rocksDB"));
    // Static membership, so that close() can remove the member and the harness can delete the
    // group right away (a Kafka Streams consumer does not leave its group on close).
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG), a.get("--group") + "-0");

    KafkaStreams streams = new KafkaStreams(topology, p);
    CountDownLatch done = new CountDownLatch(1);
    int[] exit = {0};
    streams.setUncaughtExceptionHandler(
        e -> {
          e.printStackTrace();
          exit[0] = 1;
          done.countDown();
          return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    progress.watch(done::countDown);
    streams.start();
    done.await();
    streams.close(new CloseOptions().timeout(Duration.ofSeconds(15)).leaveGroup(true));
    System.exit(exit[0]);
  }

  private static Map<String, String> parse(String[] argv) {
    Map<String, String> a = new java.util.HashMap<>();
    for (int i = 0; i + 1 < argv.length; i += 2) {
      a.put(argv[i], argv[i + 1]);
    }
    for (String k :
        new String[] {"--query", "--bootstrap", "--input-topic", "--output-topic", "--group",
          "--expected", "--events", "--state-dir"}) {
      if (!a.containsKey(k)) {
        System.err.println("kafka-streams: missing " + k);
        System.exit(2);
      }
    }
    return a;
  }
}

package bench.nexmark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.Suppressed.BufferConfig;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.processor.api.ContextualProcessor;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.SessionStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * Nexmark q0 q1 q2 q5 q7 q8 q11 as Kafka Streams DSL topologies.
 *
 * <p>Semantics (as bench/peers/common.py): bids only; event time from {@code dateTime}; windows
 * are epoch-aligned and half-open; a window accepts records while stream time (the max event
 * time seen) is below {@code end + 4 s} and emits once, when stream time reaches that (the
 * Nexmark watermark max - 4 s passing the end): {@code suppress(untilWindowCloses)}. Ties: every
 * tied row. Window stores are RocksDB (the default) without changelog topics. q8 reads people
 * and auctions instead of bids (plus the end-of-input sentinel bids, which move stream time on).
 */
final class Queries {
  static final long TUMBLE_MS = 10_000;
  static final long HOP_SIZE_MS = 10_000;
  static final long HOP_SLIDE_MS = 2_000;
  static final long GRACE_MS = 4_000;
  static final long SESSION_GAP_MS = 10_000;
  static final List<String> ALL = List.of("q0", "q1", "q2", "q5", "q7", "q8", "q11");
  static final long SENTINEL = -1;

  private static final Serde<JsonNode> JSON = Json.serde();
  private static final String[] Q0_FIELDS = {"auction", "bidder", "price", "dateTime", "extra"};

  private Queries() {}

  static Topology build(String query, String input, String output, Progress progress) {
    StreamsBuilder b = new StreamsBuilder();
    KStream<String, JsonNode> events =
        b.stream(
                input,
                Consumed.with(Serdes.String(), JSON)
                    .withTimestampExtractor(new Json.DateTimeExtractor()))
            .peek((k, v) -> progress.input());
    if (query.equals("q8")) {
      q8(events, progress)
          .peek((k, v) -> progress.row())
          .to(output, Produced.with(Serdes.String(), JSON));
      return b.build();
    }
    KStream<String, JsonNode> bids = events.filter((k, v) -> "bid".equals(v.get("type").asText()));
    KStream<String, JsonNode> rows =
        switch (query) {
          case "q0" -> bids.mapValues(v -> project(v, Q0_FIELDS));
          case "q1" -> bids.mapValues(Queries::q1);
          case "q2" ->
              bids.filter((k, v) -> v.get("auction").asLong() % 123 == 0)
                  .mapValues(v -> project(v, "auction", "price"));
          case "q5" -> q5(bids, progress);
          case "q7" -> q7(bids, progress);
          case "q11" -> q11(bids, progress);
          default -> throw new IllegalArgumentException("unknown query " + query);
        };
    rows.peek((k, v) -> progress.row()).to(output, Produced.with(Serdes.String(), JSON));
    return b.build();
  }

  private static ObjectNode project(JsonNode v, String... fields) {
    ObjectNode row = Json.object();
    for (String f : fields) {
      row.set(f, v.get(f));
    }
    return row;
  }

  private static ObjectNode q1(JsonNode v) {
    ObjectNode row = project(v, "auction", "bidder", "dateTime", "extra");
    row.put("price", v.get("price").asLong() * 0.908);
    return row;
  }

  /**
   * Hot items. Step 1 counts bids per auction and hopping window (final counts only); step 2
   * regroups the closed counts by window start and keeps the maximum with its ties. Step 1 emits
   * each window's counts together and in window order, so step 2 (records stamped with their
   * window's start, tumbling windows of one slide, no grace) closes window w when the counts of
   * a later window arrive — as Flink's window-attribute propagation does with the watermark.
   */
  private static KStream<String, JsonNode> q5(KStream<String, JsonNode> bids, Progress progress) {
    TimeWindows hop =
        TimeWindows.ofSizeAndGrace(Duration.ofMillis(HOP_SIZE_MS), Duration.ofMillis(GRACE_MS))
            .advanceBy(Duration.ofMillis(HOP_SLIDE_MS));
    KStream<Windowed<Long>, Long> counts =
        bids.map((k, v) -> KeyValue.pair(v.get("auction").asLong(), 1L)) // only the key counts
            .repartition(Repartitioned.with(Serdes.Long(), Serdes.Long()).withName("q5-by-auction"))
            .peek((k, v) -> progress.touch())
            .groupByKey(Grouped.with(Serdes.Long(), Serdes.Long()))
            .windowedBy(hop)
            .count(
                Materialized.<Long, Long, WindowStore<Bytes, byte[]>>as("q5-counts")
                    .withKeySerde(Serdes.Long())
                    .withValueSerde(Serdes.Long())
                    .withLoggingDisabled())
            .suppress(finalOnly("q5-counts-final"))
            .toStream();
    KStream<Long, JsonNode> byWindow =
        counts.process(
            () ->
                new ContextualProcessor<Windowed<Long>, Long, Long, JsonNode>() {
                  @Override
                  public void process(Record<Windowed<Long>, Long> r) {
                    long start = r.key().window().start();
                    ObjectNode v = Json.object().put("auction", r.key().key()).put("num", r.value());
                    context().forward(r.withKey(start).withValue((JsonNode) v).withTimestamp(start));
                  }
                });
    TimeWindows perStart = TimeWindows.ofSizeWithNoGrace(Duration.ofMillis(HOP_SLIDE_MS));
    return byWindow
        .repartition(Repartitioned.with(Serdes.Long(), JSON).withName("q5-by-window"))
        .peek((k, v) -> progress.touch())
        .groupByKey(Grouped.with(Serdes.Long(), JSON))
        .windowedBy(perStart)
        .aggregate(
            Queries::emptyMax,
            (start, v, acc) -> addMax(acc, v.get("num").asLong(), v.get("auction")),
            Materialized.<Long, JsonNode, WindowStore<Bytes, byte[]>>as("q5-max")
                .withKeySerde(Serdes.Long())
                .withValueSerde(JSON)
                .withLoggingDisabled())
        .suppress(finalOnly("q5-max-final"))
        .toStream()
        .flatMap(
            (w, acc) -> {
              long start = w.key();
              List<KeyValue<String, JsonNode>> out = new ArrayList<>();
              for (JsonNode auction : acc.get("rows")) {
                ObjectNode row = Json.object().put("auction", auction.asLong());
                row.put("num", acc.get("max").asLong());
                row.put("starttime", start).put("endtime", start + HOP_SIZE_MS);
                out.add(KeyValue.pair(null, row));
              }
              return out;
            });
  }

  /** Highest bid(s) per tumbling window: every bid under one key (the SQL's GROUP BY window). */
  private static KStream<String, JsonNode> q7(KStream<String, JsonNode> bids, Progress progress) {
    TimeWindows tumble =
        TimeWindows.ofSizeAndGrace(Duration.ofMillis(TUMBLE_MS), Duration.ofMillis(GRACE_MS));
    return bids.map((k, v) -> KeyValue.pair("all", (JsonNode) project(v, Q0_FIELDS)))
        .repartition(Repartitioned.with(Serdes.String(), JSON).withName("q7-one-key"))
        .peek((k, v) -> progress.touch())
        .groupByKey(Grouped.with(Serdes.String(), JSON))
        .windowedBy(tumble)
        .aggregate(
            Queries::emptyMax,
            (k, v, acc) -> addMax(acc, v.get("price").asLong(), v),
            Materialized.<String, JsonNode, WindowStore<Bytes, byte[]>>as("q7-max")
                .withKeySerde(Serdes.String())
                .withValueSerde(JSON)
                .withLoggingDisabled())
        .suppress(finalOnly("q7-max-final"))
        .toStream()
        .flatMap(
            (w, acc) -> {
              List<KeyValue<String, JsonNode>> out = new ArrayList<>();
              acc.get("rows").forEach(row -> out.add(KeyValue.pair(null, row)));
              return out;
            });
  }

  /**
   * User sessions: bids per bidder and session window (gap 10 s, grace 4 s), final counts only.
   * A Kafka Streams session spans its first to its last record and takes a record no more than
   * the gap from it, so bids exactly 10 s apart share one (the reference's merge_touching=True);
   * {@code endtime} is the last bid + the gap (Flink's SESSION_END). The sentinel bids make
   * sessions of their own (bidder -1), which the harness drops.
   */
  private static KStream<String, JsonNode> q11(KStream<String, JsonNode> bids, Progress progress) {
    SessionWindows sessions =
        SessionWindows.ofInactivityGapAndGrace(
            Duration.ofMillis(SESSION_GAP_MS), Duration.ofMillis(GRACE_MS));
    return bids.map((k, v) -> KeyValue.pair(v.get("bidder").asLong(), 1L)) // only the key counts
        .repartition(Repartitioned.with(Serdes.Long(), Serdes.Long()).withName("q11-by-bidder"))
        .peek((k, v) -> progress.touch())
        .groupByKey(Grouped.with(Serdes.Long(), Serdes.Long()))
        .windowedBy(sessions)
        .count(
            Materialized.<Long, Long, SessionStore<Bytes, byte[]>>as("q11-sessions")
                .withKeySerde(Serdes.Long())
                .withValueSerde(Serdes.Long())
                .withLoggingDisabled())
        .suppress(finalOnly("q11-sessions-final"))
        .toStream()
        .filter((w, n) -> n != null) // (a merged session's tombstone)
        .map(
            (w, n) -> {
              ObjectNode row = Json.object().put("bidder", w.key()).put("bid_count", n);
              row.put("starttime", w.window().start());
              row.put("endtime", w.window().end() + SESSION_GAP_MS);
              return KeyValue.pair((String) null, (JsonNode) row);
            });
  }

  /**
   * New users: people (by {@code id}) and auctions (by {@code seller}) in one repartition and one
   * tumbling-window aggregate per person, {@code {"name": name or null, "sold": bool}}: the
   * SQL's two GROUP BYs and their join on (person, window) in one step; a closed window with
   * both gives one row. The sentinel bids go along under key -1 (no person: no row).
   */
  private static KStream<String, JsonNode> q8(KStream<String, JsonNode> events, Progress progress) {
    TimeWindows tumble =
        TimeWindows.ofSizeAndGrace(Duration.ofMillis(TUMBLE_MS), Duration.ofMillis(GRACE_MS));
    return events
        .flatMap(
            (k, v) -> {
              String type = v.get("type").asText();
              ObjectNode slim = Json.object().put("type", type);
              long key;
              if (type.equals("person")) {
                key = v.get("id").asLong();
                slim.set("name", v.get("name"));
              } else if (type.equals("auction")) {
                key = v.get("seller").asLong();
              } else if (v.get("auction").asLong() == SENTINEL) {
                key = SENTINEL;
              } else {
                return List.<KeyValue<Long, JsonNode>>of();
              }
              return List.of(KeyValue.pair(key, (JsonNode) slim));
            })
        .repartition(Repartitioned.with(Serdes.Long(), JSON).withName("q8-by-person"))
        .peek((k, v) -> progress.touch())
        .groupByKey(Grouped.with(Serdes.Long(), JSON))
        .windowedBy(tumble)
        .aggregate(
            () -> Json.object().putNull("name").put("sold", false),
            (person, v, acc) -> {
              ObjectNode a = (ObjectNode) acc;
              if (v.get("type").asText().equals("person")) {
                a.set("name", v.get("name"));
              } else {
                a.put("sold", a.get("sold").asBoolean() || v.get("type").asText().equals("auction"));
              }
              return a;
            },
            Materialized.<Long, JsonNode, WindowStore<Bytes, byte[]>>as("q8-seen")
                .withKeySerde(Serdes.Long())
                .withValueSerde(JSON)
                .withLoggingDisabled())
        .suppress(finalOnly("q8-seen-final"))
        .toStream()
        .flatMap(
            (w, acc) -> {
              if (acc.get("name").isNull() || !acc.get("sold").asBoolean()) {
                return List.<KeyValue<String, JsonNode>>of();
              }
              ObjectNode row = Json.object().put("id", w.key());
              row.set("name", acc.get("name"));
              row.put("starttime", w.window().start());
              return List.of(KeyValue.pair((String) null, (JsonNode) row));
            });
  }

  @SuppressWarnings("unchecked") // untilWindowCloses is declared on the raw Windowed type
  private static <K> Suppressed<Windowed<K>> finalOnly(String name) {
    Suppressed<?> s = Suppressed.untilWindowCloses(BufferConfig.unbounded().withLoggingDisabled());
    return (Suppressed<Windowed<K>>) s.withName(name);
  }

  /** Accumulator {@code {"max": m, "rows": [items whose measure equals m]}}. */
  private static JsonNode emptyMax() {
    ObjectNode acc = Json.object().put("max", Long.MIN_VALUE);
    acc.putArray("rows");
    return acc;
  }

  private static JsonNode addMax(JsonNode acc, long measure, JsonNode item) {
    ObjectNode a = (ObjectNode) acc;
    long max = a.get("max").asLong();
    if (measure > max) {
      a.put("max", measure);
      a.putArray("rows").add(item);
    } else if (measure == max) {
      ((ArrayNode) a.get("rows")).add(item);
    }
    return a;
  }
}

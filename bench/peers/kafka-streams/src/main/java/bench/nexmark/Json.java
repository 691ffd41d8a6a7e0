package bench.nexmark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.processor.TimestampExtractor;

/** JSON values (Jackson trees) and event time from the events' {@code dateTime} field. */
final class Json {
  static final ObjectMapper MAPPER = new ObjectMapper();

  private Json() {}

  static ObjectNode object() {
    return MAPPER.createObjectNode();
  }

  static Serde<JsonNode> serde() {
    Serializer<JsonNode> ser =
        (topic, node) -> {
          try {
            return node == null ? null : MAPPER.writeValueAsBytes(node);
          } catch (IOException e) {
            throw new SerializationException(e);
          }
        };
    Deserializer<JsonNode> de =
        (topic, bytes) -> {
          try {
            return bytes == null ? null : MAPPER.readTree(bytes);
          } catch (IOException e) {
            throw new SerializationException(e);
          }
        };
    return Serdes.serdeFrom(ser, de);
  }

  /** Event time = {@code dateTime} (epoch ms) of the already deserialized event. */
  static final class DateTimeExtractor implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
      return ((JsonNode) record.value()).get("dateTime").asLong();
    }
  }
}

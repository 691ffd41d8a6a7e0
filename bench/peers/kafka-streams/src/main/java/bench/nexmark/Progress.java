package bench.nexmark;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * When the run is done and what it cost, as {@code Progress} in bench/peers/common.py.
 *
 * <p>The topology calls {@link #input} per consumed input record, {@link #touch} per record read
 * back from a repartition topic and {@link #row} per output row. A watcher thread polls every 20
 * ms; once {@code expected} inputs were seen and nothing moved for 5 s it prints the stats line
 * and runs {@code stop}. Wall and CPU time run from the first input record (JVM start, topology
 * build and group join excluded) to the last poll that saw progress; CPU is the whole JVM's (all
 * threads: stream thread, producer and consumer I/O threads, GC, JIT).
 */
final class Progress {
  // 5 s, not 2: this peer forwards window results from its record cache only on a commit (every
  // 1 s), then through a repartition topic; a pause of the stream thread after the last input
  // (a follow-up rebalance, a slow broker under a full test suite) once stopped a CI run at 16 of
  // q8's 29 rows. Wall and CPU time end at the last progress, so the wait is not measured.
  private static final long IDLE_NS = 5_000_000_000L;
  private static final com.sun.management.OperatingSystemMXBean OS =
      (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

  private final String query;
  private final long expected;
  private final long events;
  // written only by the (single) stream thread, read by the watcher
  private volatile long inputs;
  private volatile long moves;
  private volatile long rows;
  private volatile long t0Wall = -1;
  private volatile long t0Cpu;

  Progress(String query, long expected, long events) {
    this.query = query;
    this.expected = expected;
    this.events = events;
  }

  void input() {
    if (t0Wall < 0) {
      t0Cpu = OS.getProcessCpuTime();
      t0Wall = System.nanoTime();
    }
    inputs++;
  }

  void touch() {
    moves++;
  }

  void row() {
    rows++;
    moves++;
  }

  /** Starts the watcher; {@code stop} runs after the stats line was printed. */
  void watch(Runnable stop) {
    Thread t = new Thread(() -> run(stop), "progress");
    t.setDaemon(true);
    t.start();
  }

  private void run(Runnable stop) {
    long seenInputs = -1;
    long seenMoves = -1;
    long lastChange = System.nanoTime();
    long lastWall = 0;
    long lastCpu = 0;
    while (true) {
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        return;
      }
      long i = inputs;
      long m = moves;
      long now = System.nanoTime();
      if (i != seenInputs || m != seenMoves) {
        seenInputs = i;
        seenMoves = m;
        lastChange = now;
        lastWall = now;
        lastCpu = OS.getProcessCpuTime();
      } else if (i >= expected && now - lastChange >= IDLE_NS) {
        break;
      }
    }
    double wall = (lastWall - t0Wall) / 1e9;
    double cpu = (lastCpu - t0Cpu) / 1e9;
    String line =
        String.format(
            Locale.ROOT,
            "{\"query\": \"%s\", \"events\": %d, \"rows\": %d, \"wall_s\": %.3f, \"cpu_s\": %.3f,"
                + " \"events_per_core_s\": %d, \"peak_rss_mb\": %d, \"jit_cpu_s\": %.3f,"
                + " \"gc_cpu_s\": %.3f}",
            query,
            events,
            rows,
            wall,
            cpu,
            cpu > 0 ? Math.round(events / cpu) : 0,
            peakRssMb(),
            threadCpu("C1 CompilerThre", "C2 CompilerThre"),
            threadCpu("GC Thread", "G1 "));
    System.out.println(line);
    System.out.flush();
    stop.run();
  }

  /**
   * CPU seconds (whole process lifetime) of this JVM's native threads whose name starts with
   * one of {@code prefixes} (Linux {@code /proc/self/task}; names are cut at 15 characters).
   */
  static double threadCpu(String... prefixes) {
    double ticks = 0;
    try (var tasks = Files.list(Path.of("/proc/self/task"))) {
      for (Path t : (Iterable<Path>) tasks::iterator) {
        try {
          String name = Files.readString(t.resolve("comm")).strip();
          if (java.util.Arrays.stream(prefixes).anyMatch(name::startsWith)) {
            String stat = Files.readString(t.resolve("stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            ticks += Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime, stime
          }
        } catch (IOException | RuntimeException e) {
          // thread exited meanwhile
        }
      }
    } catch (IOException e) {
      return -1;
    }
    return ticks / 100.0; // USER_HZ
  }

  /** Peak RSS of the JVM process ({@code VmHWM}), MiB. */
  static long peakRssMb() {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (l.startsWith("VmHWM:")) {
          return Math.round(Long.parseLong(l.split("\\s+")[1]) / 1024.0);
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux: unknown
    }
    return -1;
  }
}

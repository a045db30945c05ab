//! `OTEL_BSP_SCHEDULE_DELAY=0`: spans go out as soon as they are queued, and
//! the idle worker sleeps instead of spinning a core. Its own binary: it reads
//! the CPU time of the one `runtrace-batch` thread.

use runtrace::{BatchConfig, InMemoryExporter, TracerProvider};
use std::time::{Duration, Instant};

/// CPU time (user + system, in clock ticks of 10 ms) of the batch worker.
#[cfg(target_os = "linux")]
fn worker_cpu_ticks() -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).ok()?;
        if comm.trim() == "runtrace-batch" {
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
            return Some(fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?);
        }
    }
    None
}

#[test]
fn a_zero_schedule_delay_exports_at_once_and_does_not_spin() {
    let exporter = InMemoryExporter::default();
    let provider = TracerProvider::builder()
        .with_batch_config(
            BatchConfig::builder()
                .with_scheduled_delay(Duration::ZERO)
                .build(),
        )
        .with_batch_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("t");

    // Each span is exported without waiting for a batch or a delay. The
    // bound is slack for a loaded machine; it takes microseconds.
    for i in 0..20 {
        tracer.span("now").start().end();
        let start = Instant::now();
        while exporter.finished_spans().len() <= i {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "span {i} not exported"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    // Idle: the worker sleeps. Spinning would take the whole 500 ms (50
    // ticks); 10 ticks is slack for a loaded machine.
    #[cfg(target_os = "linux")]
    {
        std::thread::sleep(Duration::from_millis(50));
        let before = worker_cpu_ticks().expect("the batch thread");
        std::thread::sleep(Duration::from_millis(500));
        let used = worker_cpu_ticks().expect("the batch thread") - before;
        assert!(
            used <= 10,
            "the idle worker used {used} ticks of 10 ms in 500 ms"
        );
    }
    provider.shutdown().unwrap();
    assert_eq!(exporter.finished_spans().len(), 20);
}

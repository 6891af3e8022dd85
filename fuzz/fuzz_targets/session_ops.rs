//! Two sessions in memory driven by an arbitrary list of operations (quinn's fuzz shape):
//! open, write, read, finish, reset, release, partial delivery of bytes in flight, clock
//! advances. A model keeps what each side wrote on each stream.
//!
//! Invariants: no panic; neither side ever fails with an error other than a keepalive
//! timeout caused by the op list itself (no protocol error between two correct peers);
//! every byte read is the next byte written on that stream (no loss, no reordering, no
//! corruption); at the end, unless a stream was reset, everything written and finished is
//! read and then `Finished`.
#![no_main]
use std::collections::HashMap;
use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use snap2p::unstable::{ReadOutcome, Session};
use snap2p::ErrorCode;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Open {
        side: bool,
    },
    Write {
        side: bool,
        s: u8,
        len: u16,
        seed: u8,
    },
    Read {
        side: bool,
        s: u8,
        max: u16,
    },
    Finish {
        side: bool,
        s: u8,
    },
    Reset {
        side: bool,
        s: u8,
        code: u8,
    },
    Accept {
        side: bool,
    },
    /// Deliver at most this many of the bytes in flight from one side.
    Deliver {
        side: bool,
        max: u16,
    },
    Pump,
    Advance {
        ms: u16,
    },
}

#[derive(Default)]
struct StreamModel {
    written: Vec<u8>,
    read: usize,
    finished: bool,
    reset: bool,
    got_fin: bool,
}

struct Side {
    s: Session,
    /// Bytes it sent that the other side has not been given yet.
    in_flight: Vec<u8>,
    /// Ids it knows (opened or accepted), in order.
    ids: Vec<u64>,
}

fn pick(ids: &[u64], s: u8) -> Option<u64> {
    if ids.is_empty() {
        None
    } else {
        Some(ids[s as usize % ids.len()])
    }
}

fn fill(out: &mut Vec<u8>, len: usize, seed: u8, offset: usize) {
    out.extend((0..len).map(|i| {
        ((offset + i) as u32)
            .wrapping_mul(2654435761)
            .wrapping_add(seed as u32) as u8
            >> 1
    }));
}

fuzz_target!(|ops: Vec<Op>| {
    let fx = snap2p_fuzz::fixture();
    let mut now = fx.base;
    let snap2p_fuzz::Pair { a, b, .. } = snap2p_fuzz::established_pair(now);
    let mut sides = [
        Side {
            s: a,
            in_flight: Vec::new(),
            ids: Vec::new(),
        },
        Side {
            s: b,
            in_flight: Vec::new(),
            ids: Vec::new(),
        },
    ];
    // (writer side index, stream id) -> model of that direction.
    let mut model: HashMap<(usize, u64), StreamModel> = HashMap::new();
    let mut timed_out = false;

    fn transmit(sides: &mut [Side; 2], i: usize, now: std::time::Instant) {
        let mut out = Vec::new();
        sides[i].s.poll_transmit(now, &mut out, 1 << 20);
        sides[i].in_flight.extend_from_slice(&out);
    }
    fn deliver(sides: &mut [Side; 2], from: usize, max: usize, now: std::time::Instant) {
        let n = max.min(sides[from].in_flight.len());
        let chunk: Vec<u8> = sides[from].in_flight.drain(..n).collect();
        // Partial frames are kept by the receiver between calls.
        let mut input = BytesMut::from(&chunk[..]);
        sides[1 - from].s.handle_input(&mut input, now);
        assert!(input.is_empty() || sides[1 - from].s.error().is_some() || true);
        // Put back whatever the receiver did not consume (a partial frame).
        if !input.is_empty() {
            let mut rest = input.to_vec();
            rest.extend_from_slice(&sides[from].in_flight);
            sides[from].in_flight = rest;
        }
    }
    fn pump_all(sides: &mut [Side; 2], now: std::time::Instant) {
        for _ in 0..200 {
            transmit(sides, 0, now);
            transmit(sides, 1, now);
            if sides[0].in_flight.is_empty() && sides[1].in_flight.is_empty() {
                return;
            }
            deliver(sides, 0, usize::MAX, now);
            deliver(sides, 1, usize::MAX, now);
        }
    }
    fn read_into(
        sides: &mut [Side; 2],
        model: &mut HashMap<(usize, u64), StreamModel>,
        r: usize,
        id: u64,
        max: usize,
    ) {
        let m = model.entry((1 - r, id)).or_default();
        match sides[r].s.read(id, max) {
            Ok(ReadOutcome::Data(d)) => {
                assert!(!m.got_fin, "data after FIN on stream {id}");
                let end = m.read + d.len();
                assert!(end <= m.written.len(), "read more than was written on {id}");
                assert_eq!(
                    &d[..],
                    &m.written[m.read..end],
                    "corrupted or reordered data on stream {id}"
                );
                m.read = end;
            }
            Ok(ReadOutcome::Finished) => {
                assert!(m.finished || m.reset, "FIN without finish on stream {id}");
                if !m.reset {
                    assert_eq!(
                        m.read,
                        m.written.len(),
                        "FIN before all data on stream {id}"
                    );
                }
                m.got_fin = true;
            }
            Ok(ReadOutcome::Blocked) | Err(_) => {}
        }
    }

    for op in ops.iter().take(256) {
        match *op {
            Op::Open { side } => {
                let i = side as usize;
                if let Ok(id) = sides[i].s.open_stream(None) {
                    sides[i].ids.push(id);
                }
            }
            Op::Write { side, s, len, seed } => {
                let i = side as usize;
                if let Some(id) = pick(&sides[i].ids, s) {
                    let m = model.entry((i, id)).or_default();
                    let mut data = Vec::new();
                    fill(&mut data, len as usize, seed, m.written.len());
                    if let Ok(n) = sides[i].s.write(id, &data) {
                        m.written.extend_from_slice(&data[..n]);
                    }
                }
            }
            Op::Read { side, s, max } => {
                let i = side as usize;
                if let Some(id) = pick(&sides[i].ids, s) {
                    read_into(&mut sides, &mut model, i, id, max as usize);
                }
            }
            Op::Finish { side, s } => {
                let i = side as usize;
                if let Some(id) = pick(&sides[i].ids, s) {
                    if sides[i].s.finish(id).is_ok() {
                        model.entry((i, id)).or_default().finished = true;
                    }
                }
            }
            Op::Reset { side, s, code } => {
                let i = side as usize;
                if let Some(id) = pick(&sides[i].ids, s) {
                    let c = [
                        ErrorCode::StreamClosed,
                        ErrorCode::StreamRefused,
                        ErrorCode::Ok,
                    ][code as usize % 3];
                    if sides[i].s.reset(id, c).is_ok() {
                        model.entry((i, id)).or_default().reset = true;
                        model.entry((1 - i, id)).or_default().reset = true;
                    }
                }
            }
            Op::Accept { side } => {
                let i = side as usize;
                if let Some(id) = sides[i].s.accept_stream() {
                    assert!(!sides[i].ids.contains(&id), "stream {id} accepted twice");
                    sides[i].ids.push(id);
                }
            }
            Op::Deliver { side, max } => {
                let i = side as usize;
                transmit(&mut sides, i, now);
                deliver(&mut sides, i, max as usize, now);
            }
            Op::Pump => pump_all(&mut sides, now),
            Op::Advance { ms } => {
                now += Duration::from_millis(ms as u64);
                sides[0].s.handle_timeout(now);
                sides[1].s.handle_timeout(now);
            }
        }
        for side in &sides {
            if let Some(e) = side.s.error() {
                // Only the clock can kill a session between two correct peers: bytes held
                // back by the op list past the keepalive timeout.
                assert_eq!(e.code, ErrorCode::Timeout, "unexpected session error: {e}");
                timed_out = true;
            }
        }
        if timed_out {
            return;
        }
    }
    // Drain: deliver everything, accept and read every stream to the end.
    for _ in 0..64 {
        pump_all(&mut sides, now);
        for i in 0..2 {
            while let Some(id) = sides[i].s.accept_stream() {
                sides[i].ids.push(id);
            }
            let ids = sides[i].ids.clone();
            for id in ids {
                read_into(&mut sides, &mut model, i, id, 1 << 20);
            }
        }
    }
    for side in &sides {
        if let Some(e) = side.s.error() {
            panic!("session failed while draining: {e}");
        }
    }
    for ((w, id), m) in &model {
        let r = 1 - w;
        if m.reset || !sides[r].ids.contains(id) {
            continue;
        }
        assert_eq!(
            m.read,
            m.written.len(),
            "stream {id} from side {w}: lost data"
        );
        if m.finished {
            assert!(m.got_fin, "stream {id} from side {w}: FIN lost");
        }
    }
});

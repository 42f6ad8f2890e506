//! The fault proxy: a forwarder (TCP or Unix sockets, either side) that obeys [`Control`].
//!
//! One task per connection moves bytes both ways. Toxics are looked up per
//! chunk, so they start and stop with their phase; commands arrive on a
//! watch channel and take effect at once. A blackhole stops reading from
//! both sides: bytes, pings and closes wait in the kernel's buffers as they
//! would behind a dead route (TCP loses nothing, it stalls), and a timed
//! blackhole then resumes. One "for good" never resumes, so neither end
//! hears from the other again: a half-open connection. The proxy's sockets
//! stand for the network; the sampler leaves them out of the driver's counts.
//! A Unix socket has no reset: there, a reset closes both sides at once.
//! Given a certificate to present ([`ProxyTls`]), the proxy ends TLS on
//! each side ([`super::side`]), so the HTTP/2 faults work under TLS too.

use super::side::{abort, ProxyTls, Side};
use super::{Cmd, Control};
use crate::net::{Address, Listener, Stream};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long the proxy waits for the upstream to accept a connection.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(5);

/// Where the proxy forwards to, and whether it ends TLS on the way.
#[derive(Clone)]
pub struct Upstream {
    pub addr: Address,
    pub tls: Option<ProxyTls>,
}

/// Proxies connections from `listener` to `upstream` until `shutdown`; then closes them all.
pub async fn run(listener: Listener, upstream: Upstream, control: Arc<Control>, shutdown: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        let client = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("proxy accept failed: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        while conns.try_join_next().is_some() {}
        control.accepted.fetch_add(1, Relaxed);
        if control.refusing() {
            control.refused.fetch_add(1, Relaxed);
            abort(&client);
            continue;
        }
        conns.spawn(handle(client, upstream.clone(), control.clone()));
    }
    control.stopped.store(true, Relaxed);
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// Forgets a connection (and its sockets' inodes) when its task ends.
struct Unregister(Arc<Control>, u64, [u64; 2]);

impl Drop for Unregister {
    fn drop(&mut self) {
        self.0.unregister(self.1);
        let mut set = crate::domain::lock(&self.0.inodes);
        for i in self.2 {
            set.remove(&i);
        }
    }
}

fn inode(s: &impl AsFd) -> u64 {
    rustix::fs::fstat(s).map_or(0, |st| st.st_ino)
}

/// Writes the frames waiting in direction `d` (0: to the server, 1: to the client) if it is between frames; false on a failed write.
async fn write_ready(h2: &mut super::h2::Conn, sides: &mut [Side; 2], d: usize) -> bool {
    let Some(frames) = h2.ready(d) else { return true };
    let to = &mut sides[1 - d];
    to.write(&frames).await && to.flush().await
}

async fn handle(client: Stream, upstream: Upstream, control: Arc<Control>) {
    let up = match tokio::time::timeout(UPSTREAM_CONNECT, upstream.addr.connect()).await {
        Ok(Ok(s)) => s,
        _ => {
            control.upstream_failures.fetch_add(1, Relaxed);
            abort(&client);
            return;
        }
    };
    let inodes = [inode(&client), inode(&up)];
    let (id, lottery, mut cmd) = control.register(inodes);
    crate::domain::lock(&control.inodes).extend(inodes);
    let _unregister = Unregister(control.clone(), id, inodes);
    let sides = match &upstream.tls {
        None => [Side::plain(client), Side::plain(up)],
        Some(tls) => match tokio::time::timeout(UPSTREAM_CONNECT, tls_ends(client, up, tls, &control)).await {
            Ok(Some(sides)) => sides,
            _ => return,
        },
    };
    let mut link = Link {
        sides,
        h2: super::h2::Conn::default(),
        pieces: Vec::new(),
        sent: [0; 2],
        close_at: None,
    };
    let (mut buf_a, mut buf_b) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    loop {
        let (blackholed, resume_at) = match *cmd.borrow() {
            Cmd::Blackhole(None) => (true, None),
            Cmd::Blackhole(Some(until)) if Instant::now() < until => (true, Some(until)),
            _ => (false, None),
        };
        if link.sides.iter().all(|s| !s.is_reading()) {
            // Both sides have closed.
            return;
        }
        let (a, b) = link.sides.split_at_mut(1);
        let close_at = link.close_at;
        let event = tokio::select! {
            changed = cmd.changed() => match changed {
                Ok(()) => Event::Command(cmd.borrow().clone()),
                Err(_) => return,
            },
            _ = tokio::time::sleep_until(resume_at.unwrap_or_else(Instant::now)), if resume_at.is_some() => continue,
            _ = tokio::time::sleep_until(close_at.unwrap_or_else(Instant::now)), if close_at.is_some() => Event::CloseDue,
            r = a[0].read(&mut buf_a), if !blackholed => Event::Read(0, r.unwrap_or(0)),
            r = b[0].read(&mut buf_b), if !blackholed => Event::Read(1, r.unwrap_or(0)),
        };
        let flow = match event {
            Event::Command(c) => link.command(c).await,
            Event::CloseDue => link.finish().await,
            Event::Read(from, 0) => link.closed(from, control.effects(lottery).slow_close).await,
            Event::Read(from, n) => {
                let data = if from == 0 { &buf_a[..n] } else { &buf_b[..n] };
                link.pass(from, data, &control, lottery).await
            }
        };
        if let Flow::Stop = flow {
            return;
        }
    }
}

/// What woke a connection's loop.
enum Event {
    Command(Cmd),
    /// The grace after a GOAWAY is over.
    CloseDue,
    /// This many bytes read from this side; 0 when it closed.
    Read(usize, usize),
}

/// Whether a connection's loop goes on.
enum Flow {
    Go,
    Stop,
}

/// One proxied connection: the client's side (0) and the upstream's (1).
struct Link {
    sides: [Side; 2],
    h2: super::h2::Conn,
    pieces: Vec<super::h2::Piece>,
    sent: [u64; 2],
    /// After a GOAWAY with a grace: when the proxy closes the connection, as the server would.
    close_at: Option<Instant>,
}

impl Link {
    /// Closes both sides in order.
    async fn finish(&mut self) -> Flow {
        for s in &mut self.sides {
            s.finish().await;
        }
        Flow::Stop
    }

    /// A fault's command: a GOAWAY to the client, a reset, or a close.
    async fn command(&mut self, now: Cmd) -> Flow {
        match now {
            Cmd::GoAway(g) => {
                self.h2.goaway(g.last_stream, g.code, &g.debug, g.on_next_stream);
                if let Some(grace) = g.close_after {
                    self.close_at = Some(Instant::now() + grace);
                }
                match write_ready(&mut self.h2, &mut self.sides, 1).await {
                    true => Flow::Go,
                    false => Flow::Stop,
                }
            }
            Cmd::Reset => {
                self.sides.iter_mut().for_each(Side::reset);
                Flow::Stop
            }
            Cmd::Close => self.finish().await,
            _ => Flow::Go,
        }
    }

    /// Side `from` closed (or failed): pass the close on, late if slow_close says so.
    async fn closed(&mut self, from: usize, slow_close: Option<Duration>) -> Flow {
        self.sides[from].stop_reading();
        if let Some(delay) = slow_close {
            tokio::time::sleep(delay).await;
        }
        self.sides[1 - from].finish().await;
        Flow::Go
    }

    /// Passes `data`, read from side `from`, to the other side, with the toxics' effects.
    async fn pass(&mut self, from: usize, data: &[u8], control: &Control, lottery: f64) -> Flow {
        let (to, n) = (1 - from, data.len());
        let effects = control.effects(lottery);
        if let Some((latency, jitter)) = effects.latency {
            let j = jitter.as_secs_f64() * (2.0 * super::random() - 1.0);
            tokio::time::sleep(Duration::from_secs_f64((latency.as_secs_f64() + j).max(0.0))).await;
        }
        if let Some(bps) = effects.bytes_per_sec {
            // Pace before passing the chunk on: it arrives when a link of this rate would deliver it.
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / bps as f64)).await;
        }
        self.pieces.clear();
        let resets = self.h2.pass(from, data, effects.rst_stream, &mut self.pieces);
        control.rst_streams.fetch_add(resets, Relaxed);
        if !self.sides[to].is_writing() {
            return Flow::Go;
        }
        let mut ok = true;
        for piece in &self.pieces {
            let bytes = match piece {
                super::h2::Piece::Bytes(r) => &data[r.clone()],
                super::h2::Piece::Frames(f) => f.as_slice(),
            };
            ok = ok && self.sides[to].write(bytes).await;
        }
        let failed = !(ok && self.sides[to].flush().await);
        // Frames for the other way (a reset's RST_STREAM to the client) go as soon as that way is between frames.
        if failed || !write_ready(&mut self.h2, &mut self.sides, to).await {
            return self.finish().await;
        }
        self.sent[from] += n as u64;
        let counter = if from == 0 {
            &control.bytes_up
        } else {
            &control.bytes_down
        };
        counter.fetch_add(n as u64, Relaxed);
        if effects.limit_bytes.is_some_and(|limit| self.sent[from] >= limit) {
            control.limit_data_closes.fetch_add(1, Relaxed);
            return self.finish().await;
        }
        Flow::Go
    }
}

/// Ends the client's TLS, then starts TLS to the target; None (and the sockets closed) when
/// either handshake fails, the target's counted as an upstream failure.
async fn tls_ends(client: Stream, up: Stream, tls: &ProxyTls, control: &Control) -> Option<[Side; 2]> {
    let client = match Side::accept(client, tls).await {
        Ok(side) => side,
        Err(e) => {
            tracing::debug!("proxy: a client's TLS handshake failed: {e}");
            return None;
        }
    };
    match Side::connect(up, tls).await {
        Ok(up) => Some([client, up]),
        Err(e) => {
            tracing::warn!("proxy: TLS to the target failed: {e}");
            control.upstream_failures.fetch_add(1, Relaxed);
            None
        }
    }
}

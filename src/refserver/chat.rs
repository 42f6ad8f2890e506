//! The built-in target's demo Chatbot: `Ask` (unary) and `Converse` (a
//! stream of `turn` replies, paced by `converse_interval`). Each Converse
//! stream holds an open file while it lives, as a session holding a cursor
//! would, and a well-behaved server drops it when the stream ends or its
//! client goes away. Three knobs break that, for the `rpc` workload to find:
//! every N-th Ask keeps a backend channel (`leak_ask_channel_every`), every
//! stream's file is kept (`leak_converse_file`), and a stream whose client
//! left goes on producing into the void, state and all, until its last turn
//! (`converse_ignores_cancel`).
//!
//! `Chat` (bidirectional) answers each question as it comes and holds a
//! session file while the stream lives: until the client half-closes or
//! cancels. A client that abandons its stream without either keeps the file
//! open here, as it would any per-stream state; `leak_chat_file` keeps it
//! even after the stream ends. `Tally` (client-streaming) counts the
//! questions and answers once.

use super::{backend_channel, Leaks};
use crate::net::Address;
use crate::proto::demo::chatbot_server::Chatbot;
use crate::proto::demo::{AskReply, AskRequest};
use crate::scenario::Knobs;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// At most this many replies in one Converse stream.
pub(crate) const MAX_TURNS: i32 = 100_000;

pub(crate) struct ChatSvc {
    knobs: Arc<Knobs>,
    leaks: Arc<Leaks>,
    self_addr: Address,
    asks: AtomicU64,
}

impl ChatSvc {
    pub(super) fn new(knobs: Arc<Knobs>, leaks: Arc<Leaks>, self_addr: Address) -> Self {
        ChatSvc {
            knobs,
            leaks,
            self_addr,
            asks: AtomicU64::new(0),
        }
    }
}

fn reply_for(req: &AskRequest, step: i32) -> AskReply {
    let seed = req.message.len() as i32 + req.context.iter().sum::<i32>() + req.user.len() as i32;
    AskReply {
        intent: seed.rem_euclid(16),
        confidence: 1.0 - 1.0 / f64::from(step + 2),
    }
}

#[tonic::async_trait]
impl Chatbot for ChatSvc {
    async fn ask(&self, req: Request<AskRequest>) -> Result<Response<AskReply>, Status> {
        let n = self.asks.fetch_add(1, Ordering::Relaxed) + 1;
        if self.knobs.leak_ask_channel_every.is_some_and(|k| n.is_multiple_of(k)) {
            // A backend channel per Ask, connected and never dropped.
            match backend_channel(&self.self_addr).await {
                // A poisoned list is still a list: the leak goes on either way.
                Ok(c) => crate::domain::lock(&self.leaks.channels).push(c),
                Err(e) => tracing::warn!("leak-ask-channel-every: dial failed: {e}"),
            }
        }
        Ok(Response::new(reply_for(req.get_ref(), 0)))
    }

    type ConverseStream = Pin<Box<dyn Stream<Item = Result<AskReply, Status>> + Send>>;

    async fn converse(&self, req: Request<AskRequest>) -> Result<Response<Self::ConverseStream>, Status> {
        let req = req.into_inner();
        let turns = req.turn.clamp(1, MAX_TURNS);
        // The stream's state: an open file, our own executable (which opens even
        // after a rebuild has replaced the file it was started from).
        let state =
            std::fs::File::open(super::OWN_EXE).map_err(|e| Status::internal(format!("opening the session: {e}")))?;
        let (interval, ignores_cancel) = (self.knobs.converse_interval, self.knobs.converse_ignores_cancel);
        let leak = self.knobs.leak_converse_file.then(|| self.leaks.clone());
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            for i in 0..turns {
                if let Some(d) = interval {
                    tokio::time::sleep(d).await;
                }
                // A client that went away closes the channel: a careful server stops here.
                if tx.send(Ok(reply_for(&req, i))).await.is_err() && !ignores_cancel {
                    break;
                }
            }
            match leak {
                Some(leaks) => crate::domain::lock(&leaks.files).push(state),
                None => drop(state),
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type ChatStream = Pin<Box<dyn Stream<Item = Result<AskReply, Status>> + Send>>;

    async fn chat(&self, req: Request<Streaming<AskRequest>>) -> Result<Response<Self::ChatStream>, Status> {
        let mut questions = req.into_inner();
        let state =
            std::fs::File::open(super::OWN_EXE).map_err(|e| Status::internal(format!("opening the session: {e}")))?;
        let leak = self.knobs.leak_chat_file.then(|| self.leaks.clone());
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut turn = 0;
            // Ends when the client half-closes (None), or cancels or resets (an error).
            while let Ok(Some(q)) = questions.message().await {
                if tx.send(Ok(reply_for(&q, turn))).await.is_err() {
                    break;
                }
                turn = turn.saturating_add(1);
            }
            match leak {
                Some(leaks) => crate::domain::lock(&leaks.files).push(state),
                None => drop(state),
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn tally(&self, req: Request<Streaming<AskRequest>>) -> Result<Response<AskReply>, Status> {
        let mut questions = req.into_inner();
        let mut n: i32 = 0;
        while let Some(_q) = questions.message().await? {
            n = n.saturating_add(1);
        }
        Ok(Response::new(AskReply {
            intent: n,
            confidence: 1.0,
        }))
    }
}

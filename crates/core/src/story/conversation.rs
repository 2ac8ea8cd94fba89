//! One conversation through a story: the runtime, what it waits for, and the beat loop that
//! both the Bevy plugin (one per `DialogueStory`, never waiting) and `llama-dialogue play`
//! (waiting on each line) drive. The driver asks [`Conversation::next`] for the next
//! [`Step`] and answers the steps that need something: a generated line, the player's pick,
//! the player's text.

use std::collections::VecDeque;

use crate::engine::backend::{CandidateScore, RequestId};

use super::runtime::{
    Beat, LineOutcome, LineRequest, RouteRequest, Routed, RuntimeError, ShownOption, StoryRuntime,
};

/// What a conversation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoryWait {
    /// Not started, or paused until the player talks to someone (also after a line was
    /// cancelled: it is asked again when the conversation resumes).
    #[default]
    Idle,
    /// Ready to move on: [`Conversation::next`] has steps.
    Advance,
    /// A generated line (request id).
    Line(RequestId),
    /// Scoring the player's free text (request id).
    Route(RequestId),
    /// The player's pick of the presented options.
    Choice,
    /// The player's free text.
    Input,
    /// The story is over.
    Ended,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one step per beat, moved once: boxing would buy nothing
pub enum Step {
    /// A node was entered (Branch nodes, which have no beat, included; after a load, the node
    /// the story resumes at). Nothing to answer.
    Entered {
        /// The node.
        node: String,
        /// Its speaker's cast key, if it has one.
        speaker: Option<String>,
    },
    /// Show an authored line. The story has already moved past it.
    Say {
        /// The node.
        node: String,
        /// Cast key, or none for narration.
        speaker: Option<String>,
        /// The line.
        text: String,
    },
    /// Get this line from the model: call [`Conversation::line_sent`] with the request id and
    /// [`Conversation::line_done`] with its text (or the fallback's). Until `line_sent`, the
    /// conversation is [`StoryWait::Idle`], so a line never asked is asked again on resume.
    Generate(LineRequest),
    /// Show the options: answer with [`Conversation::pick`].
    Choices {
        /// The node.
        node: String,
        /// Who is being answered.
        speaker: Option<String>,
        /// A line shown with the options.
        text: Option<String>,
        /// The options shown, in order (pick by position in this list).
        options: Vec<ShownOption>,
    },
    /// Ask for free text: answer with [`Conversation::routed`] (after scoring it, with
    /// [`Conversation::route_request`]).
    Input {
        /// The node.
        node: String,
        /// Who is spoken to.
        speaker: String,
        /// A prompt for the player.
        text: Option<String>,
    },
    /// The story is over.
    Ended {
        /// The ending node.
        node: String,
        /// Its title.
        title: String,
        /// Its closing line.
        text: Option<String>,
    },
    /// A step failed (the state is the last good one); the conversation is idle.
    Failed(RuntimeError),
}

/// Why a pick was refused (the choices stay on offer).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PickError {
    /// No choice is on offer.
    #[error("no choice is pending")]
    NoChoice,
    /// The position is not among the options shown.
    #[error("option {index} was not presented (there are {shown} options, numbered from 0)")]
    NotPresented {
        /// The position asked for.
        index: usize,
        /// How many were shown.
        shown: usize,
    },
    /// The option's effects failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// A story in progress with its wait state: the beat loop, without a backend.
#[derive(Debug, Clone)]
pub struct Conversation {
    runtime: StoryRuntime,
    wait: StoryWait,
    /// Authored option indices of the choices on offer, in the order shown.
    presented: Vec<usize>,
    /// The last node reported by a [`Step::Entered`].
    last_node: Option<String>,
    /// Steps found but not yet handed out.
    queued: VecDeque<Step>,
}

impl Conversation {
    /// A conversation at the runtime's current node, idle until [`resume`](Self::resume).
    pub fn new(runtime: StoryRuntime) -> Self {
        Self {
            runtime,
            wait: StoryWait::Idle,
            presented: Vec::new(),
            last_node: None,
            queued: VecDeque::new(),
        }
    }

    /// The runtime.
    pub fn runtime(&self) -> &StoryRuntime {
        &self.runtime
    }

    /// The runtime, to change sampling or read state. Changing its node directly bypasses the
    /// wait state: prefer [`replace`](Self::replace).
    pub fn runtime_mut(&mut self) -> &mut StoryRuntime {
        &mut self.runtime
    }

    /// What the conversation waits for.
    pub fn wait(&self) -> StoryWait {
        self.wait
    }

    /// The authored indices of the options on offer (empty unless waiting for a choice).
    pub fn presented(&self) -> &[usize] {
        if self.wait == StoryWait::Choice {
            &self.presented
        } else {
            &[]
        }
    }

    /// Starts or resumes an idle conversation (the player talked to someone in it). Returns
    /// whether it was idle.
    pub fn resume(&mut self) -> bool {
        let idle = self.wait == StoryWait::Idle;
        if idle {
            self.wait = StoryWait::Advance;
        }
        idle
    }

    /// Pauses a conversation that was about to move on (its partner is gone); it goes on
    /// from the same beat when resumed.
    pub fn pause(&mut self) {
        if self.wait == StoryWait::Advance {
            self.wait = StoryWait::Idle;
        }
    }

    /// Asks the pending choice or free-text prompt again (after a reload, or a refused pick
    /// the player should see again). Returns whether one was pending.
    pub fn ask_again(&mut self) -> bool {
        let asking = matches!(self.wait, StoryWait::Choice | StoryWait::Input);
        if asking {
            self.wait = StoryWait::Advance;
        }
        asking
    }

    /// Puts another runtime in place (a load or a hot reload): idle, and the node it is at
    /// is reported again by the next [`Step::Entered`].
    pub fn replace(&mut self, runtime: StoryRuntime) {
        self.runtime = runtime;
        self.wait = StoryWait::Idle;
        self.presented.clear();
        self.last_node = None;
        self.queued.clear();
    }

    /// Puts a new version of the same story in place, keeping the wait state (a hot reload):
    /// a pending choice or prompt is asked again from the new version.
    pub fn reload(&mut self, runtime: StoryRuntime) {
        self.runtime = runtime;
        self.queued.clear();
        self.ask_again();
    }

    /// The next step, or `None` while the conversation waits (see [`wait`](Self::wait)).
    /// A step that waits for an answer sets the wait state before it is returned.
    #[allow(clippy::should_implement_trait)] // not an iterator: `None` means "waiting", not "done"
    pub fn next(&mut self) -> Option<Step> {
        if let Some(step) = self.queued.pop_front() {
            return Some(step);
        }
        if self.wait != StoryWait::Advance {
            return None;
        }
        // Every node entered since the last step, Branch nodes included; after a load or at
        // the start, the node the story is at.
        let mut entered = self.runtime.take_entered();
        let node = self.runtime.state().node.clone();
        if entered.is_empty() && self.last_node.as_deref() != Some(node.as_str()) {
            entered.push(node);
        }
        for node in entered {
            let speaker = self
                .runtime
                .bundle()
                .story
                .node(&node)
                .and_then(|n| n.speaker())
                .map(str::to_owned);
            self.last_node = Some(node.clone());
            self.queued.push_back(Step::Entered { node, speaker });
        }
        let step = self.beat_step();
        self.queued.push_back(step);
        self.queued.pop_front()
    }

    /// Turns the current beat into a step, moving past authored lines.
    fn beat_step(&mut self) -> Step {
        let beat = match self.runtime.beat() {
            Ok(b) => b,
            Err(e) => return self.failed(e),
        };
        match beat {
            Beat::Line {
                node,
                speaker,
                text,
            } => match self.runtime.advance() {
                Ok(()) => Step::Say {
                    node,
                    speaker,
                    text,
                },
                Err(e) => self.failed(e),
            },
            Beat::Generate(req) => {
                self.wait = StoryWait::Idle;
                Step::Generate(req)
            }
            Beat::Choice {
                node,
                speaker,
                text,
                options,
            } => {
                self.presented = options.iter().map(|o| o.index).collect();
                self.wait = StoryWait::Choice;
                Step::Choices {
                    node,
                    speaker,
                    text,
                    options,
                }
            }
            Beat::FreeInput {
                node,
                speaker,
                text,
            } => {
                self.wait = StoryWait::Input;
                Step::Input {
                    node,
                    speaker,
                    text,
                }
            }
            Beat::Ended { node, title, text } => {
                self.wait = StoryWait::Ended;
                Step::Ended { node, title, text }
            }
        }
    }

    fn failed(&mut self, e: RuntimeError) -> Step {
        self.wait = StoryWait::Idle;
        Step::Failed(e)
    }

    /// The line of the last [`Step::Generate`] was sent as request `id`.
    pub fn line_sent(&mut self, id: RequestId) {
        self.wait = StoryWait::Line(id);
    }

    /// The line of the last [`Step::Generate`] is `text` (the model's, or the fallback).
    /// With `Some(id)`, only the answer to that request counts: a stale one is ignored and
    /// `Ok(None)` returned. On success the story moves on (along the `on_action` edge of the
    /// action the line took, if any) and the line, read, is returned.
    pub fn line_done(
        &mut self,
        id: Option<RequestId>,
        text: &str,
    ) -> Result<Option<LineOutcome>, RuntimeError> {
        if let Some(id) = id
            && self.wait != StoryWait::Line(id)
        {
            return Ok(None);
        }
        match self.runtime.finish_line(text) {
            Ok(outcome) => {
                self.wait = StoryWait::Advance;
                Ok(Some(outcome))
            }
            Err(e) => {
                self.wait = StoryWait::Idle;
                Err(e)
            }
        }
    }

    /// Request `id` (a line or a routing) was cancelled: the conversation pauses, and the line
    /// is asked again (the text re-typed) when it resumes.
    pub fn cancelled(&mut self, id: RequestId) {
        match self.wait {
            StoryWait::Line(l) if l == id => self.wait = StoryWait::Idle,
            StoryWait::Route(r) if r == id => self.wait = StoryWait::Input,
            _ => {}
        }
    }

    /// Whatever request the conversation waits on is gone (its NPC despawned).
    pub fn abandoned(&mut self) {
        match self.wait {
            StoryWait::Line(_) => self.wait = StoryWait::Idle,
            StoryWait::Route(_) => self.wait = StoryWait::Input,
            _ => {}
        }
    }

    /// Picks the option at `index` in the shown list.
    pub fn pick(&mut self, index: usize) -> Result<(), PickError> {
        if self.wait != StoryWait::Choice {
            return Err(PickError::NoChoice);
        }
        let Some(&authored) = self.presented.get(index) else {
            return Err(PickError::NotPresented {
                index,
                shown: self.presented.len(),
            });
        };
        self.runtime.choose(authored)?;
        self.wait = StoryWait::Advance;
        Ok(())
    }

    /// The scoring request for the player's free text (the runtime's).
    pub fn route_request(&mut self, player: &str) -> Result<RouteRequest, RuntimeError> {
        self.runtime.route_request(player)
    }

    /// The player's text is being scored by request `id`.
    pub fn route_sent(&mut self, id: RequestId) {
        self.wait = StoryWait::Route(id);
    }

    /// Whether the conversation waits for request `id` to route the player's text.
    pub fn routing(&self, id: RequestId) -> bool {
        self.wait == StoryWait::Route(id)
    }

    /// Takes the player's free text onto an edge (by `scores` when a model scored it, else by
    /// keywords). On error the conversation keeps waiting for text.
    pub fn routed(
        &mut self,
        player: &str,
        scores: Option<&[CandidateScore]>,
    ) -> Result<Routed, RuntimeError> {
        match self.runtime.say(player, scores) {
            Ok(r) => {
                self.wait = StoryWait::Advance;
                Ok(r)
            }
            Err(e) => {
                self.wait = StoryWait::Input;
                Err(e)
            }
        }
    }
}

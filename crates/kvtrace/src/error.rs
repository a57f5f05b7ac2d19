//! One exit-code policy for every tool (spec §7): an error either says the input cannot be
//! used (a missing or non-SQLite capture, a folder without session files, a file that is
//! not a trace: exit 2), or that the run failed on the way (a write that failed, an SQLite
//! error in the middle of a scan, threads that could not start: exit 1). Each library
//! error type answers the question itself, so no binary has to decide.

/// Is this error the input's fault?
pub trait Classify {
    /// `true`: the input is unusable (exit 2); `false`: the run failed (exit 1).
    fn unusable_input(&self) -> bool;

    /// The process exit code: 2 for unusable input, 1 for a failed run, 130 (128 +
    /// SIGINT, as shells report it) for a run stopped by Ctrl-C or SIGTERM.
    fn exit_code(&self) -> u8 {
        if self.unusable_input() {
            2
        } else {
            1
        }
    }
}

use crate::builder::batch::BatchError;
use crate::builder::BuildError;
use crate::capture::CaptureError;
use crate::conversations::ConversationsError;
use crate::encode::blocks::SaltError;
use crate::export::ExportError;
use crate::index::IndexError;
use crate::recover::RecoverError;
use crate::session::SessionDirError;
use crate::session_stats::SessionStatsError;
use crate::streams::StreamsError;
use crate::trace::read::TraceError;
use crate::validate::ValidateError;
use crate::visualize::VisualizeError;

impl Classify for CaptureError {
    fn unusable_input(&self) -> bool {
        // An SQLite error after the capture opened fine is the run's failure.
        !matches!(self, CaptureError::Sqlite { .. })
    }
}

impl Classify for SessionDirError {
    fn unusable_input(&self) -> bool {
        true
    }
}

impl Classify for SaltError {
    fn unusable_input(&self) -> bool {
        !matches!(self, SaltError::Random(_))
    }
}

impl Classify for TraceError {
    fn unusable_input(&self) -> bool {
        true
    }
}

impl Classify for BuildError {
    fn unusable_input(&self) -> bool {
        match self {
            BuildError::Capture(e) => e.unusable_input(),
            BuildError::SessionDir(_) | BuildError::Conversation(_) => true,
            BuildError::Write { .. } | BuildError::Threads(_) | BuildError::Interrupted(_) => false,
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            BuildError::Interrupted(_) => 130,
            _ if self.unusable_input() => 2,
            _ => 1,
        }
    }
}

impl Classify for BatchError {
    fn unusable_input(&self) -> bool {
        match self {
            BatchError::Manifest { .. } | BatchError::Shard { .. } => true,
            BatchError::Row { source, .. } | BatchError::Build(source) => source.unusable_input(),
            BatchError::Write { .. } => false,
        }
    }
}

impl Classify for IndexError {
    fn unusable_input(&self) -> bool {
        match self {
            IndexError::Capture(e) => e.unusable_input(),
            IndexError::MissingDir(_) | IndexError::BadIndexFile { .. } => true,
            IndexError::Write { .. } | IndexError::Sqlite { .. } => false,
        }
    }
}

impl Classify for ConversationsError {
    fn unusable_input(&self) -> bool {
        match self {
            ConversationsError::Capture(e) => e.unusable_input(),
            ConversationsError::Dir(_) => true,
        }
    }
}

impl Classify for ValidateError {
    fn unusable_input(&self) -> bool {
        match self {
            ValidateError::Capture(e) => e.unusable_input(),
            ValidateError::SessionDir(_) | ValidateError::Traces(_) => true,
        }
    }
}

impl Classify for RecoverError {
    fn unusable_input(&self) -> bool {
        match self {
            RecoverError::Capture(e) => e.unusable_input(),
            RecoverError::SessionDir(_) => true,
            RecoverError::Salt(e) => e.unusable_input(),
            RecoverError::OutputDir { .. }
            | RecoverError::Write { .. }
            | RecoverError::Threads(_) => false,
        }
    }
}

impl Classify for ExportError {
    fn unusable_input(&self) -> bool {
        !matches!(self, ExportError::Write { .. })
    }
}

impl Classify for VisualizeError {
    fn unusable_input(&self) -> bool {
        match self {
            VisualizeError::Capture(e) => e.unusable_input(),
            VisualizeError::Io { .. } => false,
            _ => true,
        }
    }
}

impl Classify for StreamsError {
    fn unusable_input(&self) -> bool {
        match self {
            StreamsError::Capture(e) => e.unusable_input(),
            StreamsError::NoSuchRequest(_) => true,
        }
    }
}

impl Classify for SessionStatsError {
    fn unusable_input(&self) -> bool {
        !matches!(self, SessionStatsError::Io { .. })
    }
}

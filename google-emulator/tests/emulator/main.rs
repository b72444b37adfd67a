//! Integration tests: the emulator on a free port, driven over real HTTP.

mod batch;
mod cli;
mod control;
mod events;
mod helpers;
mod oauth;
mod push;
mod quotas;
mod recurring;
mod sync;
mod wire_format;

//! The endpoints, as methods of [`Frontend`](crate::Frontend): one module per
//! group.

mod authorize;
mod device;
mod discovery;
mod logout;
mod register;
mod resource;
mod token;

//! Socket-free tests of the app: `App::handle` with an in-memory request, for every route's error
//! mapping (status and JSON message), and that internal error text never reaches the client.

mod report;
mod routes;

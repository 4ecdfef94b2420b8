//! Every (state, input) pair of the send half.

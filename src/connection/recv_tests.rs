//! Every (state, input) pair of the receive half.

"""The decisions of the receiver: pure functions over config and state, and the loops that apply them."""

"""The pure decision core: steps, judge, machine. No I/O, no clock, no logging."""

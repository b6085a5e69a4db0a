"""Broken: a syntax error (an unclosed parenthesis) on line 6.

optdbg must refuse to load it: exit 2 with `FILE:LINE: syntax error: ...`, the offending
line and the fix, and no traceback.
"""
optimizer = torch.optim.SGD([t], lr=0.1

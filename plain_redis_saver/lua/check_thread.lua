-- check_thread: whether a thread's keys are all there (see check_thread_intact).
--
-- KEYS[1..5]  the thread's keys (see includes/common.lua)
--
-- Reply: 1 when the thread has checkpoints, 0 when it has only pending writes or
-- nothing at all. Raises, naming a missing key, when some of its keys are gone
-- (evicted, or deleted by hand). Reads only; the thread keeps its expiry.

return check_thread_intact() and 1 or 0

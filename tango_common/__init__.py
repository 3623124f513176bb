"""What several Django-free cores need, in one neutral place: image preprocessing (shared with the exported bundle),
hashing, and the engine facts table. Imports nothing from Django or from any TANGO app; the cores may import it,
it imports none of them (.importlinter)."""

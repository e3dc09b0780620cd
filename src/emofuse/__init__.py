"""emofuse: emotion recognition from voice, words and face, alone or fused.

Importing the package is cheap; heavy libraries load inside the modules that need them.
"""

__version__ = "0.1.0"

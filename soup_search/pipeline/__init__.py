"""The SoCE recipe, top to bottom: candidates → category scores → analysis → search → held-out evaluation → outputs."""

"""Explain: exact "why" explanations of a ReLU classifier's decisions."""

from relucid.explain.why import Explainer, ExplainerConfig, WhyExplanation

__all__ = ["Explainer", "ExplainerConfig", "WhyExplanation"]

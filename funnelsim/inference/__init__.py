"""Fitting journeys from history: sufficient statistics, Bayesian models, fitted funnels."""

"""Metrics: every figure of a run is derived from exchanges (one request and its answer)."""

from twin.metrics.exchange import Exchange
from twin.metrics.histograms import LatencyBook
from twin.metrics.log import ExchangeLog, find_log, read_exchange_log

__all__ = ["Exchange", "ExchangeLog", "LatencyBook", "find_log", "read_exchange_log"]

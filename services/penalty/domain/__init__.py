"""Pure rules of 顶格处罚备案: catalogue, top-tier, deadlines, disproportion, fine anomalies."""

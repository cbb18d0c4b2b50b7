"""Domain adaptation (Table 7): unlabeled corpora, masked-LM pre-training, the uda method."""

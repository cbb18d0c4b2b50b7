"""NewsEmp (Buechel et al., EMNLP 2018): 1,860 reactions to news stories, binary `empathy_bin`.

File: `newsemp/messages.csv` of github.com/wwbp/empathic_reactions (CC BY 4.0), every field
double-quoted, essays spanning several lines. No official split: the suite splits it 80/10/10
(or by folds), stratified on `empathy_bin`, and by writer: the 1,860 essays come from 372 people
(`response_id`, 5 essays each) whose empathy rating is largely a trait of theirs, so a writer's
essays are kept in one of train/dev/test (`--group_by=none` splits essay by essay).
"""

from empathy_tf.data.sources.base import (Collector, Source, Task, csv_records, parse_choice,
                                          parse_float, register, require)

COLUMNS = ("message_id", "response_id", "article_id", "empathy", "distress", "empathy_bin",
           "distress_bin", "essay")


@register
class NewsEmp(Source):
    name = "newsemp"
    label_names = ("no_empathy", "empathy")
    files = {"all": ("newsemp/messages.csv",)}
    how_to_obtain = ("download messages.csv from github.com/wwbp/empathic_reactions, folder "
                     "data/responses/data/ (CC BY 4.0, Buechel et al. 2018)")
    extras = {"empathy": ("float", ()), "distress": ("float", ()), "distress_bin": ("int", ()),
              "article_id": ("str", ()), "response_id": ("str", ())}
    group_by = "response_id"   # the writer: a test essay's writer is never seen in training
    tasks = (Task("newsemp", "newsemp", ("no_empathy", "empathy")),)

    def read(self, path, split):
        out = Collector(path)
        for line, g in csv_records(path, ",", COLUMNS):
            message_id = require(path, line, "message_id", g["message_id"], "an id")
            label = parse_choice(path, line, "empathy_bin", g["empathy_bin"], ("0", "1"))
            out.add(line, message_id, g["essay"], label,
                    empathy=parse_float(path, line, "empathy", g["empathy"]),
                    distress=parse_float(path, line, "distress", g["distress"]),
                    distress_bin=parse_choice(path, line, "distress_bin", g["distress_bin"],
                                              ("0", "1")),
                    article_id=g["article_id"].strip(), response_id=g["response_id"].strip())
        return out.result(kinds=self.extras)

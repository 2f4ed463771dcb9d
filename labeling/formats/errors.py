class DataError(Exception):
    """Bad input, located: which file, which line, which field, and what is wrong with it."""

    def __init__(self, message, *, file=None, line=None, field=None):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(str(self))

    def located(self, *, file=None, line=None):
        if self.file is None:
            self.file = file
        if self.line is None:
            self.line = line
        self.args = (str(self),)
        return self

    def as_dict(self):
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}

    def __str__(self):
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field '{self.field}'")
        return (", ".join(where) + ": " if where else "") + self.message

"""Every error the domain raises on purpose, in one place: what went wrong and where (file, line, field)."""


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


class QueueError(Exception):
    """A refused queue operation; `field` names the input at fault, if any."""

    def __init__(self, message, *, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


class AssignmentNotFound(QueueError):
    """No such assignment, or it is someone else's (the two are indistinguishable on purpose)."""


class LeaseExpired(QueueError):
    """The lease ran out; its slot went back to the queue."""


class LeaseConflict(QueueError):
    """The request contradicts what already happened (submitted already, client_id used elsewhere)."""


class InvalidInput(QueueError):
    """The input breaks a rule; `field` says where."""


class TooLarge(InvalidInput):
    """The input is over a size limit."""


class RegistryError(ValueError):
    pass


class EvaluationError(ValueError):
    pass


class JobCancelled(Exception):
    pass

"""moto, made to answer as AWS does where the rig needs it: paged account lists, the account of
a request's access key remembered, queue reads, keyed DynamoDB queries and atomic transactions
in the time AWS takes, and moto's service list read once. None of these changes an answer; each
is checked by the rig self-test (selftest.py). rig.py installs them inside the moto process."""

from __future__ import annotations

import threading

def install_paged_account_lists() -> None:
    """moto's ListAccounts and ListAccountsForParent describe, filter and sort every account of the
    organization for each page, then scan for the page's start: O(accounts) per page, so listing
    10,000 accounts costs the emulator minutes of CPU that AWS does not spend. The rig keeps each
    backend's accounts in join order, also grouped by parent (rebuilt only when an account joins,
    leaves or moves), and pages by offset; the answers are the same."""
    from moto.organizations.models import OrganizationsBackend

    def ordered(self) -> tuple[list, dict]:
        last = id(self.accounts[-1]) if self.accounts else None
        key = (id(self.accounts), len(self.accounts), last, getattr(self, "_rig_moves", 0))
        cached = getattr(self, "_rig_ordered", None)
        if cached is None or cached[0] != key:
            everyone = sorted(self.accounts, key=lambda a: a.create_time)
            by_parent: dict[str, list] = {}
            for account in everyone:
                by_parent.setdefault(account.parent_id, []).append(account)
            cached = (key, everyone, by_parent)
            self._rig_ordered = cached
        return cached[1], cached[2]

    def paged(items: list, max_results, next_token, default: int) -> tuple[list, str | None]:
        start = int(next_token) if next_token else 0
        end = start + (max_results or default)
        return items[start:end], (str(end) if end < len(items) else None)

    def list_accounts(self, max_results=None, next_token=None):
        page, token = paged(ordered(self)[0], max_results, next_token, 100)
        return [a.describe() for a in page], token

    def list_accounts_for_parent(self, parent_id, max_results=None, next_token=None):
        parent_id = self.validate_parent_id(parent_id)
        return paged(ordered(self)[1].get(parent_id, []), max_results, next_token, 20)

    move = OrganizationsBackend.move_account

    def move_account(self, **kwargs):
        move(self, **kwargs)
        self._rig_moves = getattr(self, "_rig_moves", 0) + 1

    OrganizationsBackend.list_accounts = list_accounts
    OrganizationsBackend.list_accounts_for_parent = list_accounts_for_parent
    OrganizationsBackend.move_account = move_account


def install_remembered_key_accounts() -> None:
    """moto finds the account a request's access key belongs to by scanning every account's IAM
    keys, and does it twice a request (the rig's call log and moto's dispatch): O(accounts) per
    call, 63 % of the emulator's CPU while 10,000 accounts were dispatched (py-spy). AWS does not
    pay that. The rig remembers where a key was found and checks it there first; a key that has
    gone since, or was never found, is scanned for as moto does, so the answer is the same."""
    import moto.iam.models as iam

    found: dict[str, tuple[str, str]] = {}
    scan = iam.get_account_id_from

    def get_account_id_from(access_key: str) -> str:
        where = found.get(access_key)
        if where is not None:
            account, partition = where
            if access_key in iam.iam_backends[account][partition].access_keys:
                return account
        account = scan(access_key)
        for partition in iam.PARTITION_NAMES:
            backends = iam.iam_backends.get(account)
            if backends is not None and access_key in backends[partition].access_keys:
                found[access_key] = (account, partition)
                break
        return account

    iam.get_account_id_from = get_account_id_from


def install_constant_time_queue() -> None:
    """moto's send_message reads queue.attributes for one flag (ContentBasedDeduplication), and
    that property counts every message of the queue three times: sending N messages is O(N²),
    which makes a 10,000-account dispatch take the emulator's CPU for minutes. While a message is
    being sent, the rig answers that one flag directly; everywhere else the attributes are moto's."""
    from moto.core.utils import unix_time
    from moto.sqs.models import Queue, SQSBackend

    sending = threading.local()
    full = Queue.attributes.fget

    def attributes(self):
        if getattr(sending, "on", False):
            # moto's attributes give the flag as "true"/"false", and send_message compares strings.
            return {"ContentBasedDeduplication": str(getattr(self, "content_based_deduplication", False)).lower()}
        return full(self)

    send = SQSBackend.send_message

    def send_message(self, *args, **kwargs):
        sending.on = True
        try:
            return send(self, *args, **kwargs)
        finally:
            sending.on = False

    Queue.attributes = property(attributes)
    SQSBackend.send_message = send_message

    def retained(self, queue_name: str, message) -> bool:
        # moto reads MessageRetentionPeriod through the same O(queue) attributes for every message
        # a ReceiveMessage looks at; the rig reads the one field.
        return self.get_queue(queue_name).message_retention_period + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = retained


def install_keyed_queries() -> None:
    """moto answers a DynamoDB Query on a table's key by sorting every item of the table and
    filtering them: O(table) per call, the largest share of the rig's CPU in a 500-account sweep
    once the state table holds every account's records. AWS reads one partition. For a Query of
    the table itself (not an index), the rig hands moto only the items of the queried partition
    key; moto's own conditions, paging and filters then run as before."""
    import inspect

    from moto.dynamodb.models.table import Table

    query, every_item = Table.query, Table.all_items
    signature = inspect.signature(query)
    partition = threading.local()

    def all_items(self):
        key = getattr(partition, "key", None)
        if key is None:
            return every_item(self)
        items = self.items.get(key)
        if items is None:
            return []
        items = list(items.values()) if self.range_key_attr else [items]
        return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    def keyed_query(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs).arguments
        if bound.get("index_name") or bound.get("hash_key") is None:
            return query(self, *args, **kwargs)
        partition.key = bound["hash_key"]
        try:
            return query(self, *args, **kwargs)
        finally:
            partition.key = None

    Table.all_items = all_items
    Table.query = keyed_query


def install_atomic_transactions() -> None:
    """DynamoDB applies a conditional write or a transaction atomically; moto checks and writes in
    separate steps on the server's threads, and for a transaction deep-copies every table it
    touches (O(table) per call, the largest cost of a 500-account sweep) and on a failure puts the
    copies back, which would also undo other threads' writes made in between. The rig runs
    DynamoDB's writes one at a time, and a transaction keeps a copy of only the items it touches
    and restores those on a failure; the answers are moto's."""
    import copy

    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend

    writing = threading.RLock()
    in_transaction = threading.local()

    class TablesNotCopied:
        """moto's `copy` while a transaction runs under the lock: a table "copy" is the table
        itself, so moto's own restore is a no-op (the rig restores the touched items)."""

        def __getattr__(self, name):
            return getattr(copy, name)

        @staticmethod
        def deepcopy(obj, memo=None):
            if getattr(in_transaction, "on", False) and isinstance(obj, models.Table):
                return obj
            return copy.deepcopy(obj, memo)

    models.copy = TablesNotCopied()

    def serialized(method):
        def write(self, *args, **kwargs):
            with writing:
                return method(self, *args, **kwargs)

        return write

    for name in ("put_item", "update_item", "delete_item", "batch_write_item"):
        setattr(DynamoDBBackend, name, serialized(getattr(DynamoDBBackend, name)))

    transact = DynamoDBBackend.transact_write_items

    def touched(self, transact_items) -> list:
        out = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            try:
                table = self.get_table(op["TableName"])
                key = op.get("Key") or {
                    k: op["Item"][k] for k in (table.hash_key_attr, table.range_key_attr) if k
                }
                out.append((table, key, copy.deepcopy(self.get_item(op["TableName"], key))))
            except Exception:  # moto's own validation answers for a malformed entry
                continue
        return out

    def transact_write_items(self, transact_items):
        with writing:
            before = touched(self, transact_items)
            in_transaction.on = True
            try:
                return transact(self, transact_items)
            except Exception:
                for table, key, item in before:
                    hash_key, range_key = self.get_keys_value(table, key)
                    if item is None and table.range_key_attr:
                        table.items.get(hash_key, {}).pop(range_key, None)
                    elif item is None:
                        table.items.pop(hash_key, None)
                    elif table.range_key_attr:
                        table.items[hash_key][range_key] = item
                    else:
                        table.items[hash_key] = item
                raise
            finally:
                in_transaction.on = False

    DynamoDBBackend.transact_write_items = transact_write_items


def install_listed_services() -> None:
    """moto decides which service a request is for under one lock, and on the way lists its own
    package directory (a stat per service) for every request: the rig's requests queue on that
    lock. The directory does not change while the rig runs, so the rig lists it once."""
    import moto.backends

    services = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: services

"""Provider batch APIs for ``synthdspy generate --batch``: requests go out as batch jobs at the
provider's batch price, in rounds (:mod:`synthdspy.batch.rounds`), with job ids persisted in the
output directory (:mod:`synthdspy.batch.ledger`)."""

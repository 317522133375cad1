// Alerts: a rule on the selected symbol (price above, below or crossing a level) sent as
// alert_create on the live connection, and the owner's fired alerts as they arrive.

const SHOWN_ALERTS = 50;

export class AlertPanel {
  /** form: the rule form; list: where fired alerts go; note: acks and refusals; send(message);
   * symbol(): the symbol a new rule watches. */
  constructor(form, list, note, { send, symbol }) {
    Object.assign(this, { form, list, note, send, symbol });
    this.requests = 0;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
  }

  create() {
    const symbol = this.symbol();
    const level = Number(this.form.level.value);
    if (!symbol || !(level > 0)) {
      this.note.textContent = "select a symbol and give a level above 0";
      return;
    }
    this.requests += 1;
    this.send({
      type: "alert_create",
      request_id: `dashboard-${this.requests}`,
      rule: { kind: this.form.kind.value, symbols: [symbol], parameters: { level },
        mode: this.form.mode.value },
    });
    this.note.textContent = `creating ${this.form.kind.value} ${level} on ${symbol}…`;
  }

  /** An alert_ack: the rule as the gateway stored it. */
  acknowledged(message) {
    const rule = message.rule;
    this.note.textContent = `rule ${rule.rule_id} ${message.action}: ${rule.kind} ` +
      `${rule.parameters.level ?? ""} on ${rule.symbols.join(", ")}`;
  }

  refused(message) {
    this.note.textContent = message.message;
  }

  /** Items of the alerts stream, newest on top. */
  fired(items) {
    for (const alert of items) {
      const row = document.createElement("li");
      row.dataset.rule = alert.rule_id;
      row.textContent = `${alert.time.slice(11, 19)} ${alert.subject}: ${alert.message}`;
      this.list.prepend(row);
    }
    while (this.list.children.length > SHOWN_ALERTS) this.list.lastElementChild.remove();
  }
}

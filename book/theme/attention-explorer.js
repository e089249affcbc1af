// The appendix's attention explorer: draws one attention map of the book's trained model as an
// SVG heatmap and redraws it when the reader picks another sentence, kind, layer or head.
// The weights come from figures/attention-explorer-data.js, written when the book is built
// (src/book/appendix.rs). No dependencies, nothing loaded from the network. Pages without an
// element #attention-explorer-widget are left alone.
(function () {
  "use strict";

  var root = document.getElementById("attention-explorer-widget");
  if (!root) {
    return;
  }
  var data = window.aiaynAttention;
  if (!data || !data.sentences || data.sentences.length === 0) {
    root.setAttribute("data-state", "no-data");
    root.textContent = "The explorer's data (figures/attention-explorer-data.js) did not load; " +
      "the figures above show the same maps.";
    return;
  }

  var SVG = "http://www.w3.org/2000/svg";
  var KINDS = [
    { key: "cross", name: "encoder-decoder (cross)", rows: "target", cols: "source" },
    { key: "encoder", name: "encoder self-attention", rows: "source", cols: "source" },
    { key: "decoder", name: "decoder self-attention (masked)", rows: "target", cols: "target" }
  ];
  // The figures' colour ramp (src/book/svg.rs, `sequential`): white to deep blue.
  var STOPS = [[255, 255, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];

  function rgb(t) {
    t = Math.min(1, Math.max(0, t));
    var scaled = t * (STOPS.length - 1);
    var i = Math.min(Math.floor(scaled), STOPS.length - 2);
    var f = scaled - i;
    return [0, 1, 2].map(function (k) {
      return Math.round(STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f);
    });
  }

  function colour(t) {
    return "rgb(" + rgb(t).join(",") + ")";
  }

  // WCAG 2 contrast ratio of two colours, as `contrast` in src/book/svg.rs.
  function contrast(a, b) {
    function luminance(c) {
      var l = c.map(function (v) {
        v /= 255;
        return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
      });
      return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
    }
    var la = luminance(a), lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }

  // White text where it stands out more than the dark text does (`dark` in src/book/svg.rs).
  function textColour(t) {
    var cell = rgb(t);
    return contrast(cell, [255, 255, 255]) > contrast(cell, [34, 34, 34]) ? "#ffffff" : "#222222";
  }

  function element(name, attrs, text) {
    var e = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) {
      e.setAttribute(k, attrs[k]);
    });
    if (text !== undefined) {
      e.textContent = text;
    }
    return e;
  }

  function select(label, options, onChange) {
    var wrap = document.createElement("label");
    wrap.textContent = label + " ";
    var s = document.createElement("select");
    options.forEach(function (text, i) {
      var o = document.createElement("option");
      o.value = String(i);
      o.textContent = text;
      s.appendChild(o);
    });
    s.addEventListener("change", onChange);
    wrap.appendChild(s);
    return { wrap: wrap, select: s };
  }

  function range(n, prefix) {
    var out = [];
    for (var i = 0; i < n; i++) {
      out.push(prefix + (i + 1));
    }
    return out;
  }

  var controls = document.createElement("div");
  controls.className = "explorer-controls";
  var sentence = select("Sentence", data.sentences.map(function (s) {
    return s.source.join(" ");
  }), draw);
  var kind = select("Attention", KINDS.map(function (k) { return k.name; }), draw);
  var layer = select("Layer", range(data.layers, "layer "), draw);
  var head = select("Head", range(data.heads, "head "), draw);
  [sentence, kind, layer, head].forEach(function (c) { controls.appendChild(c.wrap); });
  var picture = document.createElement("div");
  picture.className = "explorer-map";
  var readout = document.createElement("p");
  readout.className = "explorer-readout";
  root.textContent = "";
  root.appendChild(controls);
  root.appendChild(picture);
  root.appendChild(readout);

  function draw() {
    var s = data.sentences[Number(sentence.select.value)];
    var k = KINDS[Number(kind.select.value)];
    var l = Number(layer.select.value);
    var h = Number(head.select.value);
    var w = s[k.key][l][h];
    var rows = s[k.rows];
    var cols = s[k.cols];
    var longest = function (words) {
      return words.reduce(function (m, x) { return Math.max(m, x.length); }, 1);
    };
    var cell = 32;
    var left = 16 + 8 * longest(rows);
    var top = 16 + 6 * longest(cols);
    var width = left + cols.length * cell + 16;
    var height = top + rows.length * cell + 16;
    var svg = element("svg", {
      width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img",
      "font-family": "Helvetica, Arial, sans-serif"
    });
    svg.appendChild(element("title", {}, k.name + ", layer " + (l + 1) + ", head " + (h + 1)));
    svg.appendChild(element("rect", { x: 0, y: 0, width: width, height: height, fill: "#ffffff" }));
    rows.forEach(function (word, i) {
      svg.appendChild(element("text", {
        x: left - 6, y: top + (i + 0.5) * cell + 4, "font-size": 13, "text-anchor": "end",
        fill: "#222222"
      }, word));
    });
    cols.forEach(function (word, j) {
      var x = left + (j + 0.5) * cell + 4;
      var y = top - 6;
      svg.appendChild(element("text", {
        x: x, y: y, "font-size": 13, fill: "#222222",
        transform: "rotate(-60 " + x + " " + y + ")"
      }, word));
    });
    w.forEach(function (row, i) {
      row.forEach(function (v, j) {
        var r = element("rect", {
          x: left + j * cell, y: top + i * cell, width: cell, height: cell, fill: colour(v),
          stroke: "#ffffff", "stroke-width": 1
        });
        var text = rows[i] + " \u2192 " + cols[j] + ": " + v.toFixed(data.decimals);
        r.appendChild(element("title", {}, text));
        r.addEventListener("mouseenter", function () { readout.textContent = text; });
        svg.appendChild(r);
        if (v >= 0.1) {
          svg.appendChild(element("text", {
            x: left + (j + 0.5) * cell, y: top + (i + 0.5) * cell + 4, "font-size": 11,
            "text-anchor": "middle", fill: textColour(v),
            "pointer-events": "none"
          }, v.toFixed(1).replace(/^0/, "")));
        }
      });
    });
    picture.textContent = "";
    picture.appendChild(svg);
    readout.textContent = "Rows: " + (k.rows === "source" ? "source words" : "decoder input") +
      " (queries); columns: " + (k.cols === "source" ? "source words" : "decoder input") +
      " (keys). Translation: " + s.translation + ". Point at a cell for its weight.";
  }

  draw();
  root.setAttribute("data-state", "ready");
})();

// The CSV loader: good files and every kind of bad one, with line and column in the message.
#include <fstream>
#include <sstream>

#include "support.hpp"

namespace tg = tapegrad;

namespace {

tg::CsvOptions labelled(const std::string& column) {
  tg::CsvOptions o;
  o.label_column = column;
  return o;
}

}  // namespace

TEST_CASE("a CSV file with a header and a label column loads features and labels") {
  const std::string path = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/data/tiny_iris.csv";
  auto d = tg::load_csv<float>(path, labelled("species"));
  REQUIRE(d.inputs().shape() == tg::Shape({6, 4}));
  CHECK(d.inputs()(0, 0) == 5.1f);
  CHECK(d.inputs()(5, 3) == 1.9f);
  CHECK(d.labels() == std::vector<std::int64_t>{0, 0, 1, 1, 2, 2});
  CHECK(d.num_classes() == 3);
}

TEST_CASE("the label column may be anywhere, and without one the dataset is unlabelled") {
  const std::string text = "a,y,b\n1,3,2\n-4.5e1,0,+6\n";
  auto d = tg::parse_csv<double>(text, labelled("y"));
  CHECK(d.inputs() == xt::xarray<double>{{1, 2}, {-45, 6}});
  CHECK(d.labels() == std::vector<std::int64_t>{3, 0});
  auto u = tg::parse_csv<double>(text);
  CHECK(u.kind() == tg::DatasetKind::unlabelled);
  CHECK(u.inputs() == xt::xarray<double>{{1, 3, 2}, {-45, 0, 6}});
}

TEST_CASE("CRLF line ends, blank lines, spaces, quoted header names and other delimiters are accepted") {
  tg::CsvOptions o = labelled("label");
  o.delimiter = ';';
  auto d = tg::parse_csv<double>("\"x\" ; \"label\"\r\n\r\n 0.5 ; 1.0 \r\n\n2;0\r\n\n", o);
  REQUIRE(d.inputs().shape() == tg::Shape({2, 1}));
  CHECK(d.inputs()(0, 0) == 0.5);
  CHECK(d.inputs()(1, 0) == 2.0);
  CHECK(d.labels() == std::vector<std::int64_t>{1, 0});
  tg::CsvOptions tsv;
  tsv.header = false;
  tsv.delimiter = '\t';
  std::istringstream in("1\t2\n3\t4\n");
  CHECK(tg::load_csv<float>(in, tsv).inputs() == xt::xarray<float>{{1, 2}, {3, 4}});
}

TEST_CASE("a ragged row is an IoError naming its line and cell counts") {
  CHECK_THROWS_AS(tg::parse_csv<double>("a,b\n1,2\n3\n"), tg::IoError);
  CHECK_THROWS_WITH(
      tg::parse_csv<double>("a,b\n1,2\n\n3,4,5\n", {}, "f.csv"),
      Catch::Contains("f.csv line 4 has 3 cells") && Catch::Contains("line 1 (the header) has 2"));
  tg::CsvOptions no_header;
  no_header.header = false;
  CHECK_THROWS_WITH(tg::parse_csv<double>("1,2\n3\n", no_header), Catch::Contains("line 2 has 1 cells"));
}

TEST_CASE("a non-numeric cell is an IoError naming line, column, column name and the text") {
  CHECK_THROWS_AS(tg::parse_csv<double>("a,b\n1,2\n3,abc\n"), tg::IoError);
  CHECK_THROWS_WITH(tg::parse_csv<double>("a,b\n1,2\n3,abc\n", {}, "f.csv"),
                    Catch::Contains("f.csv line 3, column 2 (\"b\")") && Catch::Contains("\"abc\""));
  for (const char* bad : {"", "1.2.3", "1 5", "5x", "0x10", "+-1", "--1", "nan", "inf", "1e999"}) {
    const std::string text = std::string("a,b\n1,") + bad + "\n";
    INFO("cell: " << bad);
    CHECK_THROWS_WITH(tg::parse_csv<double>(text), Catch::Contains("line 2, column 2"));
  }
  CHECK_THROWS_WITH(tg::parse_csv<float>("a\n1e39\n"), Catch::Contains("not a finite float"));
  CHECK(tg::parse_csv<double>("a\n1e39\n").inputs()(0, 0) == 1e39);
}

TEST_CASE("labels must be non-negative integers") {
  CHECK(tg::parse_csv<double>("x,y\n1,2.0\n", labelled("y")).labels() == std::vector<std::int64_t>{2});
  for (const char* bad : {"2.5", "-1", "one", "", "1e30"}) {
    const std::string text = std::string("x,y\n1,0\n1,") + bad + "\n";
    INFO("label: " << bad);
    CHECK_THROWS_AS(tg::parse_csv<double>(text, labelled("y")), tg::IoError);
    CHECK_THROWS_WITH(tg::parse_csv<double>(text, labelled("y")),
                      Catch::Contains("line 3, column 2 (\"y\")") && Catch::Contains("non-negative integer"));
  }
}

TEST_CASE("an unknown or duplicated label column is an IoError listing the header") {
  CHECK_THROWS_AS(tg::parse_csv<double>("a,b\n1,2\n", labelled("c")), tg::IoError);
  CHECK_THROWS_WITH(tg::parse_csv<double>("a,b\n1,2\n", labelled("c")),
                    Catch::Contains("\"c\" is not in the header") && Catch::Contains("\"a\", \"b\""));
  CHECK_THROWS_WITH(tg::parse_csv<double>("c,b,c\n1,2,3\n", labelled("c")),
                    Catch::Contains("columns 1 and 3"));
  CHECK_THROWS_WITH(tg::parse_csv<double>("y\n1\n", labelled("y")), Catch::Contains("no feature columns"));
}

TEST_CASE("an empty file or one without data rows is an IoError") {
  CHECK_THROWS_AS(tg::parse_csv<double>(""), tg::IoError);
  CHECK_THROWS_WITH(tg::parse_csv<double>("\n  \n", {}, "e.csv"), Catch::Contains("e.csv is empty"));
  CHECK_THROWS_WITH(tg::parse_csv<double>("a,b\n\n"), Catch::Contains("no data rows"));
}

TEST_CASE("a missing file is an IoError naming it; misused options are ValueErrors") {
  CHECK_THROWS_AS(tg::load_csv<double>("/nonexistent/x.csv"), tg::IoError);
  CHECK_THROWS_WITH(tg::load_csv<double>("/nonexistent/x.csv"), Catch::Contains("/nonexistent/x.csv"));
  tg::CsvOptions o = labelled("y");
  o.header = false;
  CHECK_THROWS_AS(tg::parse_csv<double>("1,2\n", o), tg::ValueError);
  tg::CsvOptions space;
  space.delimiter = ' ';
  CHECK_THROWS_AS(tg::parse_csv<double>("1 2\n", space), tg::ValueError);
}

TEST_CASE("random mutations of a CSV text either parse or throw an IoError") {
  const std::string good = "a,b,y\n1.5,-2,0\n3e2,4,1\n";
  std::mt19937_64 rng(1);
  const std::string alphabet = "0123456789.,-+eE \n\r\"xy";
  int parsed = 0;
  for (int k = 0; k < 2000; ++k) {
    std::string text = good;
    for (int m = 0; m < 3; ++m) text[rng() % text.size()] = alphabet[rng() % alphabet.size()];
    try {
      auto d = tg::parse_csv<float>(text, labelled("y"));
      CHECK(d.labels().size() == d.size());
      ++parsed;
    } catch (const tg::IoError&) {
    }
  }
  CHECK(parsed > 0);
}
